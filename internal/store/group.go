package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// GroupHolder is the running run that holds a concurrency group.
type GroupHolder struct {
	Group    string
	RunID    string
	Playbook string
	Since    time.Time // when that run started
	PID      int       // its runner's pid; 0 if unknown
	Host     string    // its runner's host
}

// GroupBusyError is the error of a run that did not start because another running run holds its
// concurrency group (RunStarted, WaitGroup with wait false). Nothing of the refused run is recorded.
type GroupBusyError struct {
	GroupHolder
}

// Error names the group and the run that holds it.
func (e *GroupBusyError) Error() string {
	return fmt.Sprintf("concurrency group %q is held by run %s (%s, pid %d on %s) since %s",
		e.Group, e.RunID, e.Playbook, e.PID, e.Host, e.Since.UTC().Format(TimeFormat))
}

// holderQuery finds the running run of a group. One at most is running; the oldest would be the one
// to name should there be more (a database written by hand).
const holderQuery = `SELECT id, playbook, started_at, coalesce(owner_pid, 0), coalesce(owner_host, '')
	FROM runs WHERE concurrency_group = ? AND status = 'running' ORDER BY started_at LIMIT 1`

// scanHolder reads holderQuery's row; nil, nil when the group is free.
func scanHolder(row scanner, group string) (*GroupHolder, error) {
	h := &GroupHolder{Group: group}
	var since string
	err := row.Scan(&h.RunID, &h.Playbook, &since, &h.PID, &h.Host)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	h.Since = parseTime(since)
	return h, nil
}

// checkGroup, in RunStarted's transaction, refuses a run whose group a running run holds: the check
// and the insert of the new run are one write transaction, which SQLite runs one at a time, so two
// runs of a group can never both start.
func checkGroup(ctx context.Context, tx *sql.Tx, group string) error {
	if group == "" {
		return nil
	}
	h, err := scanHolder(tx.QueryRowContext(ctx, holderQuery, group), group)
	if err != nil {
		return fmt.Errorf("concurrency group %q: %w", group, err)
	}
	if h != nil {
		return &GroupBusyError{*h}
	}
	return nil
}

// GroupHolder returns the running run that holds group, or nil when the group is free. A run whose
// runner died still holds its group until crash recovery (Recover, which WaitGroup calls) marks it.
func (s *Store) GroupHolder(ctx context.Context, group string) (*GroupHolder, error) {
	h, err := scanHolder(s.r.QueryRowContext(ctx, holderQuery, group), group)
	if err != nil {
		return nil, fmt.Errorf("read concurrency group %q: %w", group, wrapDriverError(err))
	}
	return h, nil
}

// groupPoll is how often WaitGroup looks at a held group again.
var groupPoll = 200 * time.Millisecond

// WaitGroup returns once no running run holds the concurrency group, so that a run of it can start
// (RunStarted still checks, since another process may take the group first). A holder whose runner
// is dead is released by crash recovery (Recover), which it runs each time it looks: a runner killed
// with SIGKILL does not keep its group. While a live run holds the group it waits, when wait is true,
// calling waiting (if set) each time the holder changes, the first time included; with wait false it
// returns a *GroupBusyError at once. ctx ends the wait with ctx's cause.
func (s *Store) WaitGroup(ctx context.Context, group string, wait bool, waiting func(*GroupHolder)) error {
	var told string
	for {
		h, err := s.GroupHolder(ctx, group)
		if err != nil || h == nil {
			return err
		}
		if _, err := s.Recover(ctx); err != nil {
			return err
		}
		if h, err = s.GroupHolder(ctx, group); err != nil || h == nil {
			return err
		}
		if !wait {
			return &GroupBusyError{*h}
		}
		if waiting != nil && h.RunID != told {
			told = h.RunID
			waiting(h)
		}
		t := time.NewTimer(groupPoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return context.Cause(ctx)
		case <-t.C:
		}
	}
}
