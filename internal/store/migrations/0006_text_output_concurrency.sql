-- 0006: output that is valid UTF-8 is stored as TEXT, other output as BLOB; concurrency groups.
--
-- Output (it was always BLOB before):
--
-- sqlite3 builds with LIKE_DOESNT_MATCH_BLOBS (Debian's, among others) never match a BLOB with LIKE,
-- so `WHERE stdout LIKE '%denied%'` found nothing. The bytes are the same either way; only the type
-- changes. Mind that length() counts characters in TEXT and bytes in a BLOB: stdout_bytes is the size.
-- The conversion of existing rows of steps and attempts (stdout, stderr) is this migration's Go part
-- (textOutput in migrate.go): SQLite has no function that checks that bytes are valid UTF-8.
--
-- runs.concurrency_group: the run's concurrency group (the playbook's concurrency key, rendered with the
-- run's params); NULL for a run without one. A running run holds its group: another run of the group
-- starts only once no run of it is running (RunStarted checks it in the transaction that inserts the
-- run). A runner that died releases it when crash recovery marks its run interrupted.
ALTER TABLE runs ADD COLUMN concurrency_group TEXT;
CREATE INDEX runs_concurrency_group ON runs (concurrency_group, status) WHERE concurrency_group IS NOT NULL;
