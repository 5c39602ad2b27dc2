package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/playbookhq/playbook/pkg/run"
)

func groupRun(id, group string) *run.Record {
	r := fixtureRun(id, "a")
	r.ConcurrencyGroup = group
	return r
}

// A running run holds its concurrency group: a second run of the group is refused, unrecorded, while
// runs of other groups start; WaitGroup refuses (wait false) or waits until the holder ends.
func TestGroupHeldOnce(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "p.db")
	s1, s2 := openAt(t, path), openAt(t, path)
	first := groupRun("first", "deploy-prod")
	if err := s1.RunStarted(ctx, first); err != nil {
		t.Fatal(err)
	}
	err := s2.RunStarted(ctx, groupRun("second", "deploy-prod"))
	var busy *GroupBusyError
	if !errors.As(err, &busy) || busy.RunID != "first" || busy.Group != "deploy-prod" || busy.PID != os.Getpid() || !busy.Since.Equal(t0) {
		t.Fatalf("second run of the group: %v (%+v), want a *GroupBusyError naming run first", err, busy)
	}
	db := rawDB(t, path)
	if got := queryString(t, db, `SELECT count(*) FROM runs WHERE id = 'second'`); got != "0" {
		t.Errorf("the refused run was recorded")
	}
	if _, err := os.Stat(s2.lockPath("second")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the refused run left its lock file: %v", err)
	}
	if err := s2.RunStarted(ctx, groupRun("other", "deploy-staging")); err != nil {
		t.Fatalf("a run of another group: %v", err)
	}
	if err := s2.RunStarted(ctx, groupRun("none", "")); err != nil {
		t.Fatalf("a run without a group: %v", err)
	}
	if got := queryString(t, db, `SELECT group_concat(id || '=' || coalesce(concurrency_group, 'NULL'), ',') FROM (SELECT * FROM runs ORDER BY id)`); got != "first=deploy-prod,none=NULL,other=deploy-staging" {
		t.Errorf("runs.concurrency_group: %s", got)
	}
	if err := s2.WaitGroup(ctx, "deploy-prod", false, nil); !errors.As(err, &busy) || busy.RunID != "first" {
		t.Fatalf("WaitGroup without waiting: %v", err)
	}
	if err := s2.WaitGroup(ctx, "free", false, nil); err != nil {
		t.Fatalf("WaitGroup on a free group: %v", err)
	}

	told := make(chan *GroupHolder, 4)
	done := make(chan error, 1)
	go func() { done <- s2.WaitGroup(ctx, "deploy-prod", true, func(h *GroupHolder) { told <- h }) }()
	if h := <-told; h.RunID != "first" || h.Playbook != "deploy-web" {
		t.Fatalf("waiting for %+v", h)
	}
	select {
	case err := <-done:
		t.Fatalf("WaitGroup returned while the group is held: %v", err)
	default:
	}
	finishRun(t, s1, first, run.StatusSucceeded, 0, t0.Add(time.Second))
	if err := <-done; err != nil {
		t.Fatalf("WaitGroup after the holder ended: %v", err)
	}
	if err := s2.RunStarted(ctx, groupRun("second", "deploy-prod")); err != nil {
		t.Fatalf("second run once the first ended: %v", err)
	}

	// A cancelled wait ends with the context's cause.
	cctx, cancel := context.WithCancelCause(ctx)
	cause := errors.New("interrupted")
	go func() { <-told; cancel(cause) }()
	if err := s1.WaitGroup(cctx, "deploy-prod", true, func(h *GroupHolder) { told <- h }); !errors.Is(err, cause) {
		t.Fatalf("cancelled wait: %v", err)
	}
}

// A holder whose runner died (here: its Store closed without ending the run, which releases the run's
// lock as a killed process does) keeps the group only until crash recovery: WaitGroup marks it
// interrupted and returns.
func TestGroupReleasedByRecovery(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "p.db")
	dead, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := dead.RunStarted(ctx, groupRun("dead", "g")); err != nil {
		t.Fatal(err)
	}
	s := openAt(t, path) // opened while the run is alive: its recovery leaves it
	if err := dead.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitGroup(ctx, "g", true, func(h *GroupHolder) { t.Errorf("waited for %+v, whose runner is gone", h) }); err != nil {
		t.Fatal(err)
	}
	if rec := s.Recovered(); len(rec) != 1 || rec[0].ID != "dead" {
		t.Fatalf("recovered %+v", rec)
	}
	if err := s.RunStarted(ctx, groupRun("next", "g")); err != nil {
		t.Fatalf("a run of the group after recovery: %v", err)
	}
}

// Runs of one group started at the same moment by separate connections: exactly one starts.
func TestGroupRace(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "p.db")
	const n = 8
	stores := make([]*Store, n)
	for i := range stores {
		stores[i] = openAt(t, path)
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = stores[i].RunStarted(ctx, groupRun(fmt.Sprintf("r%d", i), "g"))
		}()
	}
	close(start)
	wg.Wait()
	started := 0
	for i, err := range errs {
		var busy *GroupBusyError
		switch {
		case err == nil:
			started++
		case !errors.As(err, &busy):
			t.Errorf("run %d: %v", i, err)
		}
	}
	if started != 1 {
		t.Fatalf("%d runs of the group started at once, want 1: %v", started, errs)
	}
	if got := queryString(t, rawDB(t, path), `SELECT count(*) FROM runs WHERE concurrency_group = 'g' AND status = 'running'`); got != "1" {
		t.Fatalf("%s running runs of the group", got)
	}
}
