package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
)

// RunOwner is the runner process that recorded a run: what crash recovery checks. A zero field is
// unknown (NULL in the database).
type RunOwner struct {
	PID    int    // the runner's process id
	Start  uint64 // when it started, in clock ticks since boot
	Host   string // its hostname
	BootID string // the kernel boot id of its machine
}

// RunOwners returns the owners of the runs with the given ids; a run not found has no entry.
func (s *Store) RunOwners(ctx context.Context, ids []string) (map[string]RunOwner, error) {
	out := make(map[string]RunOwner, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	list, err := json.Marshal(ids)
	if err != nil {
		return nil, fmt.Errorf("read run owners: %w", err)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT id, owner_pid, owner_start, owner_host, owner_boot_id
		FROM runs WHERE id IN (SELECT value FROM json_each(?))`, string(list))
	if err != nil {
		return nil, fmt.Errorf("read run owners: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id           string
			pid, start   sql.NullInt64
			host, bootID sql.NullString
		)
		if err := rows.Scan(&id, &pid, &start, &host, &bootID); err != nil {
			return nil, fmt.Errorf("read run owners: %w", err)
		}
		out[id] = RunOwner{PID: int(pid.Int64), Start: uint64(max(start.Int64, 0)), Host: host.String, BootID: bootID.String}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read run owners: %w", err)
	}
	return out, nil
}
