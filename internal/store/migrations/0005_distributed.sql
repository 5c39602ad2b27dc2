-- 0005: runs on Temporal (`playbook run --temporal`).
--
-- runs.workflow_id, runs.workflow_run_id: the Temporal workflow that runs the run, and its first run id
-- (`temporal workflow show --workflow-id ...`); NULL for a local run.
-- attempts.worker, steps.worker: the name of the worker (its host, unless it was given --name) that ran
-- the attempt, and the step's last attempt; NULL for a local run and for a step that never started.
-- runs.status gains 'detached': the submitting process died while the workflow goes on; crash recovery
-- sets it (and kills nothing), and `playbook attach RUN` follows the run and completes its record.
ALTER TABLE runs ADD COLUMN workflow_id TEXT;
ALTER TABLE runs ADD COLUMN workflow_run_id TEXT;
ALTER TABLE attempts ADD COLUMN worker TEXT;
ALTER TABLE steps ADD COLUMN worker TEXT;

-- Widening a CHECK changes no stored row, so SQLite's documented in-place edit of the table's
-- definition is safe, and it avoids rebuilding runs: with foreign keys on (every connection has them),
-- dropping the old table would cascade into steps and attempts.
PRAGMA writable_schema = ON;
UPDATE sqlite_schema
   SET sql = replace(sql, '''cancelled'', ''interrupted'')', '''cancelled'', ''interrupted'', ''detached'')')
 WHERE type = 'table' AND name = 'runs';
-- RESET also makes this connection read the new definition; the table made and dropped below moves the
-- schema cookie, which makes every other connection read it.
PRAGMA writable_schema = RESET;
CREATE TABLE schema_cookie_bump (x);
DROP TABLE schema_cookie_bump;
