// Package store records playbook runs in a local SQLite database and answers the questions people ask
// about them afterwards (playbook runs, show, logs, retry, prune, and sqlite3 audits).
//
// The tables (runs, steps, attempts; see the README) are a public contract. The schema comes from the
// numbered SQL files embedded from migrations/, applied in order, each in its own transaction, with
// PRAGMA user_version as the schema version; a database from a newer playbook is refused
// (*NewerSchemaError).
//
// Concurrency: several playbook processes may use one database at once. It runs in WAL mode (readers
// never block the writer), every per-connection setting is in the DSN so that every pooled connection
// has it, write transactions are BEGIN IMMEDIATE (they take the write lock up front instead of failing
// with "database is locked" half-way, waiting for it up to LockWait and saying so through
// Options.Waiting after a second), and no transaction does process or network I/O.
//
// *Store implements run.Recorder. Its calls queue their writes for one background writer that
// commits them in order, several per transaction (writer.go says why and what it costs); RunStarted,
// RunFinished, Flush and Close wait for the writes, and a write that fails is reported by Failed and
// the next call, kept to be tried again if its whole transaction failed, and named by RunFinished if
// it never could be made. A run being recorded holds an advisory lock file
// (<database folder>/locks/<run id>.lock) for its whole life. Open runs crash recovery: a run still
// marked running whose lock can be taken has lost its runner (kill -9, power loss), so it and its
// unfinished steps become interrupted and the process groups its running attempts left behind are
// killed, after checking their start time so that a reused pid is never hit. Runs of a live runner and
// runs recorded on another host are never touched.
package store
