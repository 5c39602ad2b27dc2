package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/playbookhq/playbook/pkg/run"
)

// recordQuick records a finished run with one step, started at start.
func recordQuick(t *testing.T, s *Store, id, playbook string, status run.Status, start time.Time) {
	t.Helper()
	r := fixtureRun(id, "only")
	r.Playbook, r.StartedAt = playbook, start
	if err := s.RunStarted(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	if status == run.StatusRunning {
		return
	}
	recordStep(t, s, id, "only", status, 0, start, time.Second, "out "+id, "")
	finishRun(t, s, r, status, 0, start.Add(time.Second))
}

func TestResolveRun(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	if _, err := s.ResolveRun(ctx, "last"); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "no run recorded yet") {
		t.Fatalf("last on an empty database: %v", err)
	}
	recordQuick(t, s, "abc111", "p", run.StatusSucceeded, t0)
	recordQuick(t, s, "abc222", "p", run.StatusSucceeded, t0.Add(time.Hour))
	recordQuick(t, s, "abc", "p", run.StatusSucceeded, t0.Add(-time.Hour))
	recordQuick(t, s, "fff000", "p", run.StatusFailed, t0.Add(30*time.Minute))
	cases := []struct {
		ref, want string
		err       error
	}{
		{"abc111", "abc111", nil},
		{"abc2", "abc222", nil},
		{"f", "fff000", nil},
		{"abc", "abc", nil}, // a full id wins over being a prefix
		{"last", "abc222", nil},
		{"abc1x", "", ErrNotFound},
		{"zzz", "", ErrNotFound},
		{"", "", ErrNotFound},
		{"ab", "", &AmbiguousRunError{}},
	}
	for _, c := range cases {
		got, err := s.ResolveRun(ctx, c.ref)
		switch want := c.err.(type) {
		case nil:
			if err != nil || got != c.want {
				t.Errorf("ResolveRun(%q) = %q, %v; want %q", c.ref, got, err, c.want)
			}
		case *AmbiguousRunError:
			var ae *AmbiguousRunError
			if !errors.As(err, &ae) || strings.Join(ae.Candidates, ",") != "abc,abc111,abc222" || !strings.Contains(err.Error(), "abc111, abc222") {
				t.Errorf("ResolveRun(%q) = %q, %v; want ambiguous listing candidates", c.ref, got, err)
			}
		default:
			if !errors.Is(err, want) {
				t.Errorf("ResolveRun(%q) = %q, %v; want %v", c.ref, got, err, want)
			}
		}
	}
}

// The candidates of an ambiguous prefix end with "..." only when more runs match than are listed.
func TestAmbiguousPrefixSaysWhenThereAreMore(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	for i := range maxCandidates {
		recordQuick(t, s, fmt.Sprintf("dd%02d", i), "p", run.StatusSucceeded, t0)
	}
	_, err := s.ResolveRun(ctx, "dd")
	var ae *AmbiguousRunError
	if !errors.As(err, &ae) || len(ae.Candidates) != maxCandidates || ae.More || strings.Contains(err.Error(), "...") {
		t.Errorf("%d matches: %v (more %v), want all listed without \"...\"", maxCandidates, err, ae != nil && ae.More)
	}
	recordQuick(t, s, "dd99", "p", run.StatusSucceeded, t0)
	_, err = s.ResolveRun(ctx, "dd")
	if !errors.As(err, &ae) || len(ae.Candidates) != maxCandidates || !ae.More || !strings.Contains(err.Error(), "dd09, ...;") {
		t.Errorf("%d matches: %v, want %d listed and \"...\"", maxCandidates+1, err, maxCandidates)
	}
}

func TestListRuns(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	for i := 0; i < 6; i++ {
		status := []run.Status{run.StatusSucceeded, run.StatusFailed}[i%2]
		pb := []string{"deploy", "backup", "deploy"}[i%3]
		recordQuick(t, s, fmt.Sprintf("run%d", i), pb, status, t0.Add(time.Duration(i)*time.Hour))
	}
	recordQuick(t, s, "live", "deploy", run.StatusRunning, t0.Add(10*time.Hour))
	ids := func(rs []*run.Record) string {
		var out []string
		for _, r := range rs {
			out = append(out, r.ID)
		}
		return strings.Join(out, ",")
	}
	cases := []struct {
		name string
		f    RunFilter
		want string
	}{
		{"all newest first", RunFilter{}, "live,run5,run4,run3,run2,run1,run0"},
		{"limit", RunFilter{Limit: 2}, "live,run5"},
		{"status", RunFilter{Status: run.StatusFailed}, "run5,run3,run1"},
		{"playbook", RunFilter{Playbook: "backup"}, "run4,run1"},
		{"since", RunFilter{Since: t0.Add(4 * time.Hour)}, "live,run5,run4"},
		{"all filters", RunFilter{Status: run.StatusSucceeded, Playbook: "deploy", Since: t0.Add(time.Hour), Limit: 5}, "run2"},
		{"running", RunFilter{Status: run.StatusRunning}, "live"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rs, err := s.ListRuns(ctx, c.f)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(rs); got != c.want {
				t.Fatalf("got %s, want %s", got, c.want)
			}
		})
	}
	rs, _ := s.ListRuns(ctx, RunFilter{Status: run.StatusRunning})
	if rs[0].ExitCode != -1 || !rs[0].FinishedAt.IsZero() {
		t.Errorf("running run: exit %d, finished %v", rs[0].ExitCode, rs[0].FinishedAt)
	}
}

func TestPrune(t *testing.T) {
	ctx := context.Background()
	setup := func(t *testing.T) *Store {
		s := openTest(t)
		for i := 0; i < 10; i++ {
			recordQuick(t, s, fmt.Sprintf("run%02d", i), "p", run.StatusSucceeded, t0.Add(time.Duration(i)*24*time.Hour))
		}
		recordQuick(t, s, "oldlive", "p", run.StatusRunning, t0.Add(-48*time.Hour))
		// run09 retries run00: deleting run00 must not delete run09 nor fail.
		if _, err := s.w.Exec(`UPDATE runs SET retry_of = 'run00' WHERE id = 'run09'`); err != nil {
			t.Fatal(err)
		}
		return s
	}
	remaining := func(t *testing.T, s *Store) string {
		rs, err := s.ListRuns(ctx, RunFilter{})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, r := range rs {
			ids = append(ids, r.ID)
		}
		return strings.Join(ids, ",")
	}
	t.Run("keep", func(t *testing.T) {
		s := setup(t)
		res, err := s.Prune(ctx, PruneOptions{Keep: 3})
		if err != nil {
			t.Fatal(err)
		}
		if res.Runs != 7 || res.Steps != 7 || res.Attempts != 7 {
			t.Errorf("result %+v, want 7 runs, steps, attempts", res)
		}
		if got := remaining(t, s); got != "run09,run08,run07,oldlive" {
			t.Errorf("left %s (the running run is never deleted)", got)
		}
		r, _ := s.Run(ctx, "run09")
		if r.RetryOf != "" {
			t.Errorf("retry_of = %q, want cleared", r.RetryOf)
		}
		db := rawDB(t, s.Path())
		for _, table := range []string{"steps", "attempts"} {
			if got := queryString(t, db, "SELECT count(*) FROM "+table+" WHERE run_id NOT IN (SELECT id FROM runs)"); got != "0" {
				t.Errorf("%s: %s orphan rows", table, got)
			}
		}
		integrityOK(t, s.Path())
	})
	t.Run("older than", func(t *testing.T) {
		s := setup(t)
		res, err := s.Prune(ctx, PruneOptions{Before: t0.Add(5 * 24 * time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		if res.Runs != 5 {
			t.Errorf("removed %d runs, want 5", res.Runs)
		}
		if got := remaining(t, s); got != "run09,run08,run07,run06,run05,oldlive" {
			t.Errorf("left %s", got)
		}
	})
	t.Run("nothing to do", func(t *testing.T) {
		s := setup(t)
		res, err := s.Prune(ctx, PruneOptions{Before: t0.Add(-100 * 24 * time.Hour)})
		if err != nil || res.Runs != 0 {
			t.Fatalf("%+v, %v", res, err)
		}
	})
}

// Prune gives the space of deleted output back to the file system.
func TestPruneReclaimsSpace(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	big := strings.Repeat("x", 256<<10)
	for i := 0; i < 20; i++ {
		id := fmt.Sprintf("big%02d", i)
		r := fixtureRun(id, "s")
		r.StartedAt = t0.Add(time.Duration(i) * time.Minute)
		if err := s.RunStarted(ctx, r); err != nil {
			t.Fatal(err)
		}
		recordStep(t, s, id, "s", run.StatusSucceeded, 0, r.StartedAt, time.Second, big, big)
		finishRun(t, s, r, run.StatusSucceeded, 0, r.StartedAt.Add(time.Second))
	}
	res, err := s.Prune(ctx, PruneOptions{Keep: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("prune: %+v", res)
	if res.Runs != 19 || res.SizeAfter > res.SizeBefore/4 {
		t.Fatalf("prune %+v: want 19 runs removed and the size cut to a quarter at most", res)
	}
	integrityOK(t, s.Path())
}
