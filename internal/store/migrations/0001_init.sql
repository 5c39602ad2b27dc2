-- 0001: runs, steps, attempts. The tables and column names are a public contract (README, "The
-- database"): people query them with sqlite3. Never rename a column; add new ones in a new migration.
--
-- Conventions: timestamps are UTC ISO-8601 text with milliseconds (2026-11-26T07:04:52.123Z), so text
-- order is time order; NULL means "none" (no exit code, not finished, no error); booleans are 0/1;
-- output is BLOB (the raw bytes, invalid UTF-8 included), read it with CAST(stdout AS TEXT).

CREATE TABLE runs (
    id               TEXT PRIMARY KEY,
    playbook         TEXT NOT NULL,
    file             TEXT NOT NULL,
    file_sha256      TEXT NOT NULL,
    params           TEXT NOT NULL DEFAULT '{}',
    status           TEXT NOT NULL CHECK (status IN
                         ('running', 'succeeded', 'failed', 'timed_out', 'cancelled', 'interrupted')),
    exit_code        INTEGER,
    started_at       TEXT NOT NULL,
    finished_at      TEXT,
    duration_ms      INTEGER,
    user             TEXT NOT NULL DEFAULT '',
    host             TEXT NOT NULL DEFAULT '',
    error            TEXT,
    retry_of         TEXT REFERENCES runs (id) ON DELETE SET NULL,
    -- Who owns the run while it is running, for crash recovery: the runner's pid, its start time in
    -- clock ticks since boot, the machine (hostname and kernel boot id).
    owner_pid        INTEGER,
    owner_start      INTEGER,
    owner_host       TEXT,
    owner_boot_id    TEXT
);

CREATE INDEX runs_started_at ON runs (started_at);
CREATE INDEX runs_status ON runs (status, started_at);
CREATE INDEX runs_playbook ON runs (playbook, started_at);
CREATE INDEX runs_retry_of ON runs (retry_of) WHERE retry_of IS NOT NULL;

CREATE TABLE steps (
    run_id            TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    step_id           TEXT NOT NULL,
    seq               INTEGER NOT NULL,
    name              TEXT NOT NULL DEFAULT '',
    status            TEXT NOT NULL CHECK (status IN
                          ('pending', 'running', 'succeeded', 'failed', 'timed_out', 'cancelled',
                           'skipped', 'interrupted')),
    reason            TEXT,
    error             TEXT,
    exit_code         INTEGER,
    signal            INTEGER,
    attempts          INTEGER NOT NULL DEFAULT 0,
    started_at        TEXT,
    finished_at       TEXT,
    duration_ms       INTEGER,
    command           TEXT,
    pid               INTEGER,
    stdout            BLOB,
    stderr            BLOB,
    stdout_bytes      INTEGER NOT NULL DEFAULT 0,
    stderr_bytes      INTEGER NOT NULL DEFAULT 0,
    stdout_truncated  INTEGER NOT NULL DEFAULT 0 CHECK (stdout_truncated IN (0, 1)),
    stderr_truncated  INTEGER NOT NULL DEFAULT 0 CHECK (stderr_truncated IN (0, 1)),
    stdout_utf8       INTEGER NOT NULL DEFAULT 1 CHECK (stdout_utf8 IN (0, 1)),
    stderr_utf8       INTEGER NOT NULL DEFAULT 1 CHECK (stderr_utf8 IN (0, 1)),
    outputs           TEXT NOT NULL DEFAULT '{}',
    continue_on_error INTEGER NOT NULL DEFAULT 0 CHECK (continue_on_error IN (0, 1)),
    reused_from       TEXT,
    PRIMARY KEY (run_id, step_id)
);

-- One row per attempt of a step (retries included). The output of the step's last attempt is kept
-- once, in steps.stdout/stderr: once the step has finished, that attempt's stdout and stderr here are
-- NULL (an attempt that wrote nothing has an empty BLOB, not NULL). The view attempt_output puts it
-- back.
CREATE TABLE attempts (
    run_id            TEXT NOT NULL,
    step_id           TEXT NOT NULL,
    attempt           INTEGER NOT NULL CHECK (attempt >= 1),
    status            TEXT NOT NULL CHECK (status IN
                          ('running', 'succeeded', 'failed', 'timed_out', 'cancelled', 'interrupted')),
    exit_code         INTEGER,
    signal            INTEGER,
    started_at        TEXT NOT NULL,
    finished_at       TEXT,
    duration_ms       INTEGER,
    command           TEXT,
    pid               INTEGER,
    pid_start         INTEGER,
    error             TEXT,
    stdout            BLOB,
    stderr            BLOB,
    stdout_bytes      INTEGER NOT NULL DEFAULT 0,
    stderr_bytes      INTEGER NOT NULL DEFAULT 0,
    stdout_truncated  INTEGER NOT NULL DEFAULT 0 CHECK (stdout_truncated IN (0, 1)),
    stderr_truncated  INTEGER NOT NULL DEFAULT 0 CHECK (stderr_truncated IN (0, 1)),
    PRIMARY KEY (run_id, step_id, attempt),
    FOREIGN KEY (run_id, step_id) REFERENCES steps (run_id, step_id) ON DELETE CASCADE
);

CREATE VIEW attempt_output AS
SELECT a.run_id, a.step_id, a.attempt, a.status, a.exit_code,
       CASE WHEN a.stdout IS NULL AND a.attempt = s.attempts THEN s.stdout ELSE a.stdout END AS stdout,
       CASE WHEN a.stderr IS NULL AND a.attempt = s.attempts THEN s.stderr ELSE a.stderr END AS stderr,
       a.stdout_bytes, a.stderr_bytes, a.stdout_truncated, a.stderr_truncated
FROM attempts AS a
JOIN steps AS s ON s.run_id = a.run_id AND s.step_id = a.step_id;
