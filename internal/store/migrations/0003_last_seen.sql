-- 0003: runs.last_seen_at, the last time the runner of a running run was known to be alive. The runner
-- refreshes it about once a second together with its running steps' output so far (steps.stdout and
-- friends), so that crash recovery ends a dead run when its runner died, not at its last state change.
ALTER TABLE runs ADD COLUMN last_seen_at TEXT;
