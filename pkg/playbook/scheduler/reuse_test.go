package scheduler

import (
	"fmt"
	"testing"

	"github.com/playbookhq/playbook/pkg/playbook"
	"github.com/playbookhq/playbook/pkg/run"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

// retryRun plays a first run of first, then a retry of it (Config.RetryOf, Reuse) of second; every
// attempt of the retry succeeds. It returns the retry's harness.
type retryRow struct {
	name          string
	first, second string            // playbooks; second "" = first
	p1, p2        map[string]string // -p values of each run
	outcome       func(id string, attempt int) (run.Status, int)
	outputs       map[string]map[string]string // outputs of the first run's steps
	edit          func(recs map[string]*run.StepRecord)
	key2          []byte // the retry's fingerprint key; nil = testKey
	// want: per step, "reused" for a step taken over, else "RetryReason/RetryDetail".
	want  map[string]string
	check func(t *testing.T, h *harness)
}

func resolve(t *testing.T, pb *playbook.Playbook, values map[string]string) playbook.Params {
	t.Helper()
	p, err := pb.ResolveParams(values)
	if err != nil {
		t.Fatalf("params: %v", err)
	}
	return p
}

func (r retryRow) play(t *testing.T) *harness {
	pb1 := loadPlaybook(t, r.first)
	h1 := newHarnessPB(t, pb1, Config{RunID: "r1", Params: resolve(t, pb1, r.p1), FingerprintKey: testKey})
	h1.begin()
	for h1.done == nil {
		id := h1.oldestInflight()
		if id == "" {
			t.Fatalf("first run stalls:\n%s", h1.dump())
		}
		st, code := run.StatusSucceeded, 0
		if r.outcome != nil {
			st, code = r.outcome(id, h1.inflight[id])
		}
		h1.finish(id, st, code, r.outputs[id])
	}
	recs := map[string]*run.StepRecord{}
	for id, rec := range h1.records {
		cp := *rec
		recs[id] = &cp
	}
	if r.edit != nil {
		r.edit(recs)
	}
	second := r.second
	if second == "" {
		second = r.first
	}
	key := r.key2
	if key == nil {
		key = testKey
	}
	pb2 := loadPlaybook(t, second)
	h := newHarnessPB(t, pb2, Config{RunID: "r2", Params: resolve(t, pb2, r.p2), RetryOf: "r1", Reuse: recs, FingerprintKey: key})
	h.begin()
	h.drain(nil)
	return h
}

// TestRulesRetryRun: README "Retrying a run": when a step of the retried run is reused, and the
// reason recorded either way.
func TestRulesRetryRun(t *testing.T) {
	const chain = hdr + "params:\n  v: {default: '1'}\nsteps:\n  - {id: a, run: 'build $PLAYBOOK_PARAM_V'}\n  - {id: b, needs: a, run: 'test ${{ steps.a.outputs.x }}'}\n"
	const undo = hdr + "steps:\n  - {id: deploy, run: x}\n  - {id: verify, needs: deploy, run: x}\n  - {id: rollback, needs: [deploy, verify], if: 'failure()', run: x}\n"
	const secretPB = hdr + "params:\n  tok: {secret: true, default: s3cr3t-t0ken}\nsteps:\n  - {id: a, run: x}\n  - {id: b, run: x}\n"
	rows := []retryRow{
		{
			name: "reused", first: chain,
			outputs: map[string]map[string]string{"a": {"x": "1"}},
			want:    map[string]string{"a": "reused", "b": "reused"},
			check: func(t *testing.T, h *harness) {
				eq(t, "starts", len(h.starts), 0)
				a := h.records["a"]
				eq(t, "a", []any{a.Status, a.Reason, a.ReusedFrom, a.Outputs["x"]}, []any{run.StatusSucceeded, run.ReasonReused, "r1", "1"})
				eq(t, "run", h.done.Status, run.StatusSucceeded)
			},
		},
		{
			name: "reused_from_the_original_run", first: chain,
			edit: func(recs map[string]*run.StepRecord) { recs["a"].ReusedFrom = "r0" },
			want: map[string]string{"a": "reused"},
			check: func(t *testing.T, h *harness) {
				eq(t, "a reused from", h.records["a"].ReusedFrom, "r0")
			},
		},
		{
			name: "not_succeeded", first: chain, outcome: failing("a"),
			want: map[string]string{"a": "not_succeeded/failed", "b": "not_succeeded/skipped"},
		},
		{
			name: "new_step", first: chain, second: chain + "  - {id: c, needs: b, run: x}\n",
			want: map[string]string{"a": "reused", "b": "reused", "c": "new_step/"},
		},
		{
			name: "need_not_reused", first: chain,
			edit: func(recs map[string]*run.StepRecord) { recs["a"].Status = run.StatusFailed },
			want: map[string]string{"a": "not_succeeded/failed", "b": "need_not_reused/a"},
		},
		{
			name: "undone", first: undo,
			outcome: failing("verify"),
			want:    map[string]string{"deploy": "undone/rollback", "verify": "not_succeeded/failed"},
		},
		{
			name: "outputs_masked", first: secretPB,
			outputs: map[string]map[string]string{"a": {"k": "s3cr3t-t0ken"}, "b": {"k": "public"}},
			want:    map[string]string{"a": "outputs_masked/", "b": "reused"},
		},
		{
			name: "no_fingerprint", first: chain,
			edit: func(recs map[string]*run.StepRecord) { recs["b"].Fingerprint = "" },
			want: map[string]string{"a": "reused", "b": "no_fingerprint/"},
		},
		{
			name: "inputs_changed", first: chain, p2: map[string]string{"v": "2"},
			want: map[string]string{"a": "inputs_changed/", "b": "need_not_reused/a"},
		},
		{
			name: "run_id_in_the_command_is_never_reused", first: hdr + "steps:\n  - {id: a, run: 'tag ${{ run.id }}'}\n  - {id: b, run: 'echo $PLAYBOOK_RUN_ID'}\n",
			want: map[string]string{"a": "inputs_changed/", "b": "reused"},
		},
		{
			name: "inputs_changed_when_the_key_differs", first: chain, key2: []byte("another key"),
			want: map[string]string{"a": "inputs_changed/"},
		},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			h := r.play(t)
			for id, want := range r.want {
				rec := h.records[id]
				if rec == nil {
					t.Errorf("%s: no record", id)
					continue
				}
				got := rec.RetryReason + "/" + rec.RetryDetail
				if rec.Reason == run.ReasonReused {
					got = "reused"
					if rec.RetryReason != run.RetryReused {
						t.Errorf("%s reused with retry reason %q", id, rec.RetryReason)
					}
				}
				if got != want {
					t.Errorf("%s: %s, want %s", id, got, want)
				}
			}
			if r.check != nil {
				r.check(t, h)
			}
			if t.Failed() {
				t.Logf("retry's commands:\n%s", h.dump())
			}
		})
	}
}

// TestRulesPlan: a dry run's decisions are the core's, on the path where every step that runs
// succeeds; an if that reads what only a run knows is assumed true, and says so.
func TestRulesPlan(t *testing.T) {
	pb := loadPlaybook(t, hdr+"params:\n  env: {default: staging}\n  tok: {secret: true, default: pw-123456}\nsteps:\n"+
		"  - {id: a, run: x}\n"+
		"  - {id: b, if: 'false', run: x}\n"+
		"  - {id: c, needs: b, run: x}\n"+
		"  - {id: d, needs: a, if: 'steps.a.outputs.x == \"y\"', run: x}\n"+
		"  - {id: e, needs: a, if: 'failure()', run: x}\n"+
		"  - {id: f, if: 'params.env == \"prod\"', run: x}\n"+
		"  - {id: g, needs: [d], if: 'always()', run: x}\n"+
		"  - {id: h, needs: [d], run: x}\n")
	plan, err := Plan(pb, resolve(t, pb, nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"a": `L0 runs=true decided=true why=""`,
		"b": `L0 runs=false decided=true why="if false: false"`,
		"c": `L1 runs=false decided=true why="if success(): false"`,
		"d": `L1 runs=true decided=false why="if steps.a.outputs.x == \"y\": decided at run time"`,
		"e": `L1 runs=false decided=true why="if failure(): false (it runs when a dependency fails)"`,
		"f": `L0 runs=false decided=true why="if params.env == \"prod\": false"`,
		"g": `L2 runs=true decided=true why="if always(): true"`,
		"h": `L2 runs=true decided=true why=""`,
	}
	var order []string
	for _, p := range plan {
		order = append(order, p.Step.ID)
		got := fmtPlanned(p)
		if got != want[p.Step.ID] {
			t.Errorf("%s: %s\nwant %s", p.Step.ID, got, want[p.Step.ID])
		}
	}
	eq(t, "order", order, []string{"a", "b", "c", "d", "e", "f", "g", "h"})

	// A condition error is the real run's too, masked; it fails the step, and fail_fast holds after it.
	pb = loadPlaybook(t, hdr+"params:\n  tok: {secret: true, default: pw-123456}\nsteps:\n"+
		"  - {id: i, if: 'int(params.tok) > 0', run: x}\n  - {id: j, needs: i, if: 'failure()', run: x}\n  - {id: k, needs: i, if: 'always()', run: x}\n"+
		"  - {id: l, run: x}\n")
	if plan, err = Plan(pb, resolve(t, pb, nil), nil); err != nil {
		t.Fatal(err)
	}
	want = map[string]string{
		"i": `L0 runs=false decided=true why="if int(params.tok) > 0: error: if int(params.tok) > 0: invalid operation: int(***)"`,
		"j": `L1 runs=true decided=true why="if failure(): true"`,
		"k": `L1 runs=true decided=true why="if always(): true"`,
		"l": `L0 runs=false decided=true why="skipped: fail_fast"`,
	}
	for _, p := range plan {
		if got := fmtPlanned(p); got != want[p.Step.ID] {
			t.Errorf("%s: %s\nwant %s", p.Step.ID, got, want[p.Step.ID])
		}
	}
}

func fmtPlanned(p PlannedStep) string {
	return fmt.Sprintf("L%d runs=%v decided=%v why=%q", p.Level, p.Runs, p.Decided, p.Why)
}
