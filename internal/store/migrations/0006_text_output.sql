-- 0006: output that is valid UTF-8 is stored as TEXT, other output as BLOB (it was always BLOB).
--
-- sqlite3 builds with LIKE_DOESNT_MATCH_BLOBS (Debian's, among others) never match a BLOB with LIKE,
-- so `WHERE stdout LIKE '%denied%'` found nothing. The bytes are the same either way; only the type
-- changes. Mind that length() counts characters in TEXT and bytes in a BLOB: stdout_bytes is the size.
-- The conversion of existing rows of steps and attempts (stdout, stderr) is this migration's Go part
-- (textOutput in migrate.go): SQLite has no function that checks that bytes are valid UTF-8.
SELECT 1;
