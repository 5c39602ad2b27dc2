package scheduler

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/playbookhq/playbook/pkg/run"
)

// The properties of the issue, checked on random playbooks played with random outcomes and random
// stops: every step ends exactly once; no step starts before its needs finished; attempts in flight
// never exceed max_parallel and reach it whenever steps are ready; after a counted failure under
// fail_fast only always()/failure() steps start, after a stop only always()/cancelled() ones, after a
// kill none; RunDone comes once and last; the same inputs give the same commands.

// chooser makes the random choices of one case: from the fuzzer's bytes first, then from a PRNG
// seeded by them, so that the fuzzer steers the start and a short input still plays a whole run.
type chooser struct {
	data []byte
	i    int
	r    *rand.Rand
}

func newChooser(seed uint64, data []byte) *chooser {
	h := fnv.New64a()
	h.Write(data)
	return &chooser{data: data, r: rand.New(rand.NewPCG(seed, h.Sum64()))}
}

func (c *chooser) intn(n int) int {
	if n <= 1 {
		return 0
	}
	if c.i < len(c.data) {
		b := c.data[c.i]
		c.i++
		return int(b) % n
	}
	return c.r.IntN(n)
}

// pct is true with probability p percent.
func (c *chooser) pct(p int) bool { return c.intn(100) < p }

// genCase is a random playbook: a DAG (each step needs up to 3 earlier ones), random ifs, retries,
// continue_on_error, fail_fast, max_parallel.
type genCase struct {
	yaml   string
	maxPar int // the playbook's max_parallel; 0 = none
	n      int
}

func genPlaybook(c *chooser) genCase {
	var b strings.Builder
	b.WriteString("version: 1\nname: fuzz\n")
	b.WriteString("params:\n  flag: {type: bool, default: " + fmt.Sprint(c.pct(50)) + "}\n  mode: {default: " + []string{"x", "y"}[c.intn(2)] + "}\n")
	if c.pct(50) {
		b.WriteString("fail_fast: false\n")
	}
	g := genCase{}
	if !c.pct(20) {
		g.maxPar = 1 + c.intn(8)
		fmt.Fprintf(&b, "max_parallel: %d\n", g.maxPar)
	}
	b.WriteString("timeout: 1h\nsteps:\n")
	switch k := c.intn(100); {
	case k < 70:
		g.n = 1 + c.intn(20)
	case k < 95:
		g.n = 20 + c.intn(60)
	default:
		g.n = 80 + c.intn(220)
	}
	for i := 0; i < g.n; i++ {
		fmt.Fprintf(&b, "  - id: s%d\n", i)
		var needs []int
		if i > 0 {
			for k := c.intn(4); k > 0; k-- {
				// Mostly near neighbours, so that chains form, sometimes anything earlier.
				n := i - 1 - c.intn(min(i, 5))
				if c.pct(30) {
					n = c.intn(i)
				}
				if !slices.Contains(needs, n) {
					needs = append(needs, n)
				}
			}
			if len(needs) > 0 {
				ids := make([]string, len(needs))
				for j, n := range needs {
					ids[j] = fmt.Sprintf("s%d", n)
				}
				fmt.Fprintf(&b, "    needs: [%s]\n", strings.Join(ids, ", "))
			}
		}
		need := ""
		if len(needs) > 0 {
			need = fmt.Sprintf("steps.s%d", needs[c.intn(len(needs))])
		}
		conds := []string{"", "", "", "success()", "failure()", "always()", "cancelled()", "params.flag", "!params.flag",
			`always() && params.mode == "x"`, "false", "cancelled() || failure()", "success() || failure()"}
		if need != "" {
			conds = append(conds, need+".exit_code == 0", "failure() || "+need+`.outputs.k == "v"`,
				"success() && "+need+`.outputs.k != "v"`, "int("+need+".outputs.n) > 0",
				`always() && run.status == "failed"`, need+".attempts < 2")
		}
		if cond := conds[c.intn(len(conds))]; cond != "" {
			fmt.Fprintf(&b, "    if: '%s'\n", cond)
		}
		if c.pct(30) {
			fmt.Fprintf(&b, "    retry: {attempts: %d, delay: %s", 2+c.intn(2), []string{"0s", "1s", "2s"}[c.intn(3)])
			if c.pct(50) {
				b.WriteString(", backoff: 2, max_delay: 3s")
			}
			if c.pct(30) {
				b.WriteString(", on_exit_codes: [75]")
			}
			b.WriteString("}\n")
		}
		if c.pct(15) {
			b.WriteString("    continue_on_error: true\n")
		}
		switch {
		case need != "" && c.pct(5):
			fmt.Fprintf(&b, "    run: 'echo ${{ int(%s.outputs.n) }}'\n", need) // may fail to render
		case need != "" && c.pct(20):
			fmt.Fprintf(&b, "    run: 'echo ${{ %s.outputs.k }}'\n", need)
		default:
			b.WriteString("    run: x\n")
		}
	}
	g.yaml = b.String()
	return g
}

// propRun is one play of a case, with what the properties need to know besides the harness's books.
type propRun struct {
	*harness
	g       genCase
	maxPar  int
	held    bool
	begun   bool
	stopped bool // Cancel, Timeout or RecordFailed
	killed  bool
	// failedAt: the batch from which fail_fast holds (0: not yet).
	failedAt   int
	stopSent   map[string]bool
	recordFail bool
	firstStop  string // "cancel", "timeout" or "kill": the stop that decides the run's status
	signal     syscall.Signal
	errs       []string
}

func (p *propRun) errorf(format string, args ...any) {
	if len(p.errs) < 10 {
		p.errs = append(p.errs, fmt.Sprintf("batch %d: ", p.batch)+fmt.Sprintf(format, args...))
	}
}

// checkBatch checks the properties that hold after every Step.
func (p *propRun) checkBatch(h *harness, ev Event, cmds []Command) {
	switch e := ev.(type) {
	case Begin:
		p.begun = true
	case Hold:
		p.held = e.On
	}
	for _, cmd := range cmds {
		var id string
		var attempt int
		switch c := cmd.(type) {
		case *StartAttempt:
			id, attempt = c.Step.ID, c.Attempt
		case *AttemptUnstarted:
			id, attempt = c.Attempt.StepID, c.Attempt.Attempt
		case *RetryLater:
			if p.stopped || p.killed {
				p.errorf("RetryLater %s#%d after the run stopped", c.Step, c.Attempt)
			}
		case *StopSteps:
			for _, sa := range c.Steps {
				p.stopSent[sa.Step] = true
			}
		case *KillAll:
			for s := range h.inflight {
				p.stopSent[s] = true
			}
		}
		if id == "" {
			continue
		}
		st := h.pb.Step(id)
		if p.held {
			p.errorf("start of %s#%d while held", id, attempt)
		}
		for _, n := range st.Needs {
			if b, ok := h.recBatch[n]; !ok || b > h.batch {
				p.errorf("start of %s#%d before its need %s finished", id, attempt, n)
			}
		}
		if attempt == 1 && p.failedAt > 0 && h.batch >= p.failedAt && !st.If.Calls("always") && !st.If.Calls("failure") {
			p.errorf("start of %s (if %s) after a failure under fail_fast", id, st.If.Source())
		}
		if p.killed {
			p.errorf("start of %s#%d after the kill", id, attempt)
		}
		if p.stopped && (attempt > 1 || !st.If.Calls("always") && !st.If.Calls("cancelled")) {
			p.errorf("start of %s#%d (if %s) after the run stopped", id, attempt, st.If.Source())
		}
	}
	// Counted failures of this batch: fail_fast holds from this batch on for the attempt the event
	// reported (its record is made before any start), from the next one for the rest.
	for _, cmd := range cmds {
		rs, ok := cmd.(*RecordStep)
		if !ok {
			continue
		}
		r := rs.Record
		for _, n := range h.pb.Step(r.StepID).Needs {
			if b, ok := h.recBatch[n]; !ok || b > h.batch {
				p.errorf("%s recorded before its need %s", r.StepID, n)
			}
		}
		if !h.pb.FailFast || p.failedAt > 0 || r.ContinueOnError || (r.Status != run.StatusFailed && r.Status != run.StatusTimedOut) {
			continue
		}
		if af, ok := ev.(AttemptFinished); ok && af.Step == r.StepID {
			p.failedAt = h.batch
		} else {
			// A condition error or an attempt that could not start, decided among the starts of
			// this batch (or a step waiting to retry that a stop ended: the stop's rule is stricter).
			p.failedAt = h.batch + 1
		}
	}

	if got := h.c.Running(); got != len(h.inflight) {
		p.errorf("Core.Running() = %d, the driver has %d in flight", got, len(h.inflight))
	}
	if p.maxPar > 0 && len(h.inflight) > p.maxPar {
		p.errorf("%d attempts in flight, max_parallel %d", len(h.inflight), p.maxPar)
	}
	if p.begun && !p.held && h.done == nil && (p.maxPar == 0 || len(h.inflight) < p.maxPar) {
		// A free slot: no step whose needs all finished may be left waiting (it has started, waits
		// for its retry, or is recorded).
		for _, st := range h.pb.Steps {
			if h.records[st.ID] != nil {
				continue
			}
			if _, ok := h.inflight[st.ID]; ok {
				continue
			}
			if _, ok := h.timers[st.ID]; ok {
				continue
			}
			ready := true
			for _, n := range st.Needs {
				if h.records[n] == nil {
					ready = false
					break
				}
			}
			if ready {
				p.errorf("%s is ready and undecided with %d of %d slots used", st.ID, len(h.inflight), p.maxPar)
			}
		}
	}
}

// playCase plays one random run of the case given by seed and data; it returns the commands as text
// and the property violations.
func playCase(t testing.TB, seed uint64, data []byte) (string, []string, genCase) {
	c := newChooser(seed, data)
	g := genPlaybook(c)
	pb := loadPlaybook(t, g.yaml)
	cfg := Config{RunID: "fuzz"}
	if c.pct(20) {
		cfg.MaxParallel = 1 + c.intn(4)
	}
	if c.pct(25) {
		// A retry of an earlier run of the same playbook, whose steps mostly succeeded.
		h0 := newHarnessPB(t, pb, Config{RunID: "first", FingerprintKey: testKey})
		h0.begin()
		h0.drain(func(string, int) (run.Status, int) {
			if c.pct(85) {
				return run.StatusSucceeded, 0
			}
			return run.StatusFailed, 1
		})
		cfg.RetryOf, cfg.Reuse, cfg.FingerprintKey = "first", h0.records, testKey
	}
	h := newHarnessPB(t, pb, cfg)
	p := &propRun{harness: h, g: g, maxPar: g.maxPar, stopSent: map[string]bool{}}
	if cfg.MaxParallel > 0 {
		p.maxPar = cfg.MaxParallel
	}
	h.check = p.checkBatch

	// stop sends a stop event; the flags are set first, so that the batch it causes is checked
	// against them. The run's status follows the first cancel, kill or timeout.
	stop := func(kind string, ev Event) {
		switch kind {
		case "kill":
			p.killed = true
		case "record":
			p.recordFail, p.stopped = true, true
		default:
			p.stopped = true
		}
		if kind != "record" && p.firstStop == "" {
			p.firstStop = kind
		}
		h.step(ev)
	}
	cancel := func() {
		var cause error
		switch c.intn(5) {
		case 0:
			cause = nil
		case 1:
			cause = &run.Interrupt{Signal: syscall.SIGTERM}
		case 2:
			cause = &run.Interrupt{Signal: syscall.SIGHUP}
		case 3:
			cause = &run.Interrupt{Signal: syscall.SIGINT}
		case 4:
			cause = &run.Interrupt{Signal: syscall.SIGQUIT, Kill: true}
		}
		var intr *run.Interrupt
		if p.firstStop == "" && errors.As(cause, &intr) {
			p.signal = intr.Signal
		}
		if intr != nil && intr.Kill {
			stop("kill", Cancel{Cause: cause})
			return
		}
		stop("cancel", Cancel{Cause: cause})
	}

	if c.pct(5) {
		cancel()
	}
	if c.pct(5) {
		h.step(Hold{On: true})
	}
	h.begin()
	for n := 0; h.done == nil; n++ {
		if n > 50000 {
			p.errorf("no end after %d events", n)
			break
		}
		// Now and then something from outside the steps.
		switch k := c.intn(1000); {
		case k < 8:
			cancel()
			continue
		case k < 11:
			stop("kill", Kill{})
			continue
		case k < 17:
			stop("timeout", Timeout{})
			continue
		case k < 22:
			stop("record", RecordFailed{Err: errors.New("disk full")})
			continue
		case k < 40:
			h.step(Hold{On: !p.held})
			continue
		case k < 45 && len(h.starts) > 0:
			// Events the core must ignore: a finish reported twice, a stale retry timer.
			sa := h.starts[c.intn(len(h.starts))]
			_, waiting := h.timers[sa.Step]
			if a, ok := h.inflight[sa.Step]; !waiting && (!ok || a != sa.Attempt) {
				h.step(AttemptFinished{Step: sa.Step, Attempt: sa.Attempt, Retryable: true,
					Result: &run.AttemptRecord{StepID: sa.Step, Attempt: sa.Attempt, Status: run.StatusFailed, ExitCode: 1}})
				h.step(RetryDue{Step: sa.Step, Attempt: sa.Attempt})
			}
			continue
		}
		var inflight []string
		for _, sa := range h.starts {
			if a, ok := h.inflight[sa.Step]; ok && a == sa.Attempt {
				inflight = append(inflight, sa.Step)
			}
		}
		timers := make([]string, 0, len(h.timers))
		for id := range h.timers {
			timers = append(timers, id)
		}
		sort.Strings(timers)
		switch {
		case len(inflight) > 0 && (len(timers) == 0 || c.intn(4) > 0):
			id := inflight[c.intn(len(inflight))]
			if c.pct(10) {
				h.step(AttemptStarted{Step: id, Attempt: h.inflight[id], At: h.now})
			}
			var st run.Status
			code := 0
			switch k := c.intn(100); {
			case p.stopSent[id] && k < 70:
				st = run.StatusCancelled
			case k < 60:
				st = run.StatusSucceeded
			case k < 92:
				st, code = run.StatusFailed, []int{1, 2, 75}[c.intn(3)]
			default:
				st = run.StatusTimedOut
			}
			var outputs map[string]string
			if st == run.StatusSucceeded && c.pct(50) {
				outputs = map[string]string{"k": []string{"v", "w"}[c.intn(2)], "n": []string{"1", "0", "x"}[c.intn(3)]}
			}
			h.finishR(id, st, code, outputs, c.pct(90))
		case len(timers) > 0:
			h.due(timers[c.intn(len(timers))])
		case p.held:
			h.step(Hold{On: false})
		default:
			p.errorf("the run stalls: nothing in flight, no retry waiting, not held, no RunDone")
		}
		if len(p.errs) > 0 {
			break
		}
	}
	p.checkEnd()
	return strings.Join(h.log, "\n"), p.errs, g
}

// checkEnd checks the run's end: every step recorded once with its attempts, RunDone once and last,
// the run's status and exit status.
func (p *propRun) checkEnd() {
	h := p.harness
	if h.done == nil {
		return
	}
	if h.doneN != 1 || !strings.HasPrefix(h.log[len(h.log)-1], "done ") {
		p.errorf("RunDone %d times, last command %q", h.doneN, h.log[len(h.log)-1])
	}
	starts := map[string]int{}
	for _, sa := range h.starts {
		starts[sa.Step]++
	}
	failed := false
	for _, st := range h.pb.Steps {
		r := h.records[st.ID]
		if r == nil {
			p.errorf("%s never recorded", st.ID)
			continue
		}
		if r.Reason == run.ReasonReused {
			// Taken over: it succeeded in the retried run, and so was every step it needs taken over.
			if prev := h.c.cfg.Reuse[st.ID]; prev == nil || prev.Status != run.StatusSucceeded || starts[st.ID] > 0 {
				p.errorf("%s reused, but it ran or did not succeed in the retried run", st.ID)
			}
			for _, n := range st.Needs {
				if h.records[n] == nil || h.records[n].Reason != run.ReasonReused {
					p.errorf("%s reused, but its need %s was not", st.ID, n)
				}
			}
		} else if r.Attempts != starts[st.ID] {
			p.errorf("%s recorded with %d attempts, started %d times", st.ID, r.Attempts, starts[st.ID])
		}
		if (r.Status == run.StatusSkipped) != (r.Attempts == 0 && r.Reason != run.ReasonConditionError) {
			p.errorf("%s: status %s with %d attempts", st.ID, r.Status, r.Attempts)
		}
		if (r.Status == run.StatusFailed || r.Status == run.StatusTimedOut) && !r.ContinueOnError {
			failed = true
		}
	}
	want := run.StatusSucceeded
	switch {
	case p.firstStop == "timeout":
		want = run.StatusTimedOut
	case p.firstStop == "cancel" || p.firstStop == "kill":
		want = run.StatusCancelled
	case failed || p.recordFail:
		want = run.StatusFailed
	}
	if h.done.Status != want {
		p.errorf("run %s, want %s (first stop %q, a step failed %v)", h.done.Status, want, p.firstStop, failed)
	}
	code := run.ExitStatus(want, p.signal)
	if p.recordFail {
		code = run.ExitStore
	}
	if h.done.ExitCode != code && h.done.Status == want {
		p.errorf("run exit %d, want %d", h.done.ExitCode, code)
	}
	// After RunDone, a record that could not be written changes the run's record, and no command
	// comes. (Cancel, Kill and Timeout after RunDone: TestStopsAfterRunDone.)
	if !p.recordFail {
		status := h.done.Status
		if cmds := h.c.Step(h.now, RecordFailed{Err: errors.New("late")}); len(cmds) > 0 {
			p.errorf("RecordFailed after RunDone: %v", cmds)
		}
		if status == run.StatusSucceeded {
			status = run.StatusFailed
		}
		if rec := h.c.Record(); rec.Status != status || rec.ExitCode != run.ExitStore {
			p.errorf("after RunDone and RecordFailed the run is %s %d, want %s 3", rec.Status, rec.ExitCode, status)
		}
	}
}

// runCase plays a case twice and reports every violated property, and commands that differ.
func runCase(t *testing.T, seed uint64, data []byte) {
	t.Helper()
	log1, errs, g := playCase(t, seed, data)
	log2, _, _ := playCase(t, seed, data)
	if log1 != log2 {
		a, b := strings.Split(log1, "\n"), strings.Split(log2, "\n")
		i := 0
		for i < len(a) && i < len(b) && a[i] == b[i] {
			i++
		}
		errs = append(errs, fmt.Sprintf("not deterministic: command %d differs between two plays", i))
	}
	if len(errs) > 0 {
		t.Errorf("seed %d data %x: %d steps, max_parallel %d:\n%s\nplaybook:\n%s\ncommands:\n%s", seed, data, g.n, g.maxPar,
			strings.Join(errs, "\n"), g.yaml, tail(log1, 60))
	}
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = append([]string{"..."}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// TestCoreProperties plays 300 random cases from a fixed seed.
func TestCoreProperties(t *testing.T) {
	n := 300
	if testing.Short() {
		n = 50
	}
	r := rand.New(rand.NewPCG(14, 2026))
	for i := 0; i < n; i++ {
		runCase(t, r.Uint64(), nil)
		if t.Failed() {
			return
		}
	}
}

// FuzzCore: the same properties, on cases the fuzzer steers (go test -fuzz FuzzCore).
func FuzzCore(f *testing.F) {
	f.Add(uint64(1), []byte{})
	f.Add(uint64(2), []byte{0, 0, 0, 0, 0, 0, 0, 0})
	f.Add(uint64(3), []byte{99, 1, 1, 1, 3, 3, 3, 3, 3, 3})
	f.Add(uint64(4), []byte("fail fast and cancel"))
	f.Add(uint64(5), []byte{97, 99, 10, 7, 0, 4, 2, 1, 0, 0, 5, 5})
	f.Fuzz(func(t *testing.T, seed uint64, data []byte) {
		if len(data) > 4096 {
			return
		}
		runCase(t, seed, data)
	})
}
