-- 0004: the run's private temporary folder, where its steps write $PLAYBOOK_OUTPUT (which may hold a
-- secret). The runner removes it when the run ends; when the runner dies first, crash recovery removes
-- it, after checking that it is that run's folder (its name holds the run id, it is a real folder, not a
-- symlink, and it belongs to the user recovering). NULL for runs recorded before this column existed.
ALTER TABLE runs ADD COLUMN temp_dir TEXT;
