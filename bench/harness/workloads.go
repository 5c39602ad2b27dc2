package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// sizes are the workload parameters of one mode.
type sizes struct {
	chain, wide        int   // steps
	fanSteps, fanPar   int   // fan-out: steps of sleep 0.2, max_parallel
	flood              int64 // bytes
	scaleBig, scaleSml int   // fan-out tree sizes
	storeRuns          int
}

var (
	fullSizes  = sizes{chain: 1000, wide: 1000, fanSteps: 200, fanPar: 50, flood: 1 << 30, scaleBig: 10000, scaleSml: 1000, storeRuns: 100000}
	quickSizes = sizes{chain: 100, wide: 100, fanSteps: 20, fanPar: 5, flood: 64 << 20, scaleBig: 1000, scaleSml: 100, storeRuns: 2000}
)

// fanSleep is the duration of each fan-out step: with fanSteps/fanPar waves the ideal is 0.8 s.
const fanSleep = 0.2

// row is one line of the table.
type row struct {
	workload, playbook, peer, ratio, goal, met string
	runs                                       int
}

// bench is the state shared by the workloads.
type bench struct {
	sz      sizes
	quick   bool
	work    string // generated files and databases
	pb      string // the playbook binary
	task    string // go-task, or ""
	make    string // make, or ""
	seeddb  string // bench/seeddb, or ""
	base    string // another playbook binary to compare with (-baseline), or ""
	rounds  int    // 0: each workload's default
	details []string
}

func (b *bench) roundsOr(def, quickDef int) int {
	switch {
	case b.rounds > 0:
		return b.rounds
	case b.quick:
		return quickDef
	}
	return def
}

func (b *bench) path(name string) string { return filepath.Join(b.work, name) }

func (b *bench) write(name, content string) (string, error) {
	p := b.path(name)
	return p, os.WriteFile(p, []byte(content), 0o644)
}

// pbRun is `playbook run --db DB FILE`, the text output going to /dev/null like every tool's.
func (b *bench) pbRun(name, db, file string) *command {
	return &command{name: name, argv: []string{b.pb, "run", "--db", b.path(db), file}, dir: b.work}
}

// withBaseline adds the baseline binary's run of file, recorded in its own database, when -baseline
// is given: "playbook vs baseline" rows then give before/after figures measured side by side.
func (b *bench) withBaseline(cmds []*command, db, file string) []*command {
	if b.base == "" {
		return cmds
	}
	return append(cmds, &command{name: "baseline", argv: []string{b.base, "run", "--db", b.path("base-" + db), file}, dir: b.work})
}

// baselineRow compares pb with the baseline, if measured.
func (b *bench) baselineRow(w string, res results, pb string) []row {
	if len(res["baseline"]) == 0 {
		return nil
	}
	r := b.vsInfo(w, res, pb, "baseline")
	r.goal = "before/after"
	return []row{r}
}

// detail keeps one command's medians for the details section.
func (b *bench) detail(label string, res results, names ...string) {
	for _, n := range names {
		if len(res[n]) == 0 {
			continue
		}
		b.details = append(b.details, fmt.Sprintf("%-34s %-36s wall %8s  cpu %8s  max rss %6.1f MiB  (%d runs)",
			label, n, fmtSec(res.medianWall(n)), fmtSec(res.medianCPU(n)), float64(res.maxRSS(n))/1024, len(res[n])))
	}
}

func fmtSec(s float64) string {
	switch {
	case s < 0.001:
		return fmt.Sprintf("%.0f µs", s*1e6)
	case s < 1:
		return fmt.Sprintf("%.1f ms", s*1e3)
	}
	return fmt.Sprintf("%.3f s", s)
}

func fmtRatio(x float64) string { return fmt.Sprintf("%.2fx", x) }

func metIf(ok bool) string {
	if ok {
		return "yes"
	}
	return "NO"
}

// ---- generated files ----

// playbookSteps writes a playbook whose step i is produced by step(i).
func playbookSteps(name string, maxParallel int, n int, step func(i int) string) string {
	var s strings.Builder
	fmt.Fprintf(&s, "version: 1\nname: %s\nmax_parallel: %d\nsteps:\n", name, maxParallel)
	for i := range n {
		s.WriteString(step(i))
	}
	return s.String()
}

func chainStep(body string) func(int) string {
	return func(i int) string {
		if i == 0 {
			return fmt.Sprintf("  - {id: s%d, %s}\n", i, body)
		}
		return fmt.Sprintf("  - {id: s%d, needs: s%d, %s}\n", i, i-1, body)
	}
}

func wideStep(body string) func(int) string {
	return func(i int) string { return fmt.Sprintf("  - {id: s%d, %s}\n", i, body) }
}

// treeStep is a fan-out tree: step i needs step (i-1)/10, so the root fans out to 10, each of those to
// 10, and so on.
func treeStep(i int) string {
	if i == 0 {
		return "  - {id: s0, exec: [/bin/true]}\n"
	}
	return fmt.Sprintf("  - {id: s%d, needs: s%d, exec: [/bin/true]}\n", i, (i-1)/10)
}

// makeChain: target t(i) depends on t(i-1); each runs /bin/true, which make executes directly (no
// shell metacharacters).
func makeChain(n int) string {
	var s strings.Builder
	fmt.Fprintf(&s, "all: t%d\n", n-1)
	s.WriteString(".PHONY: all")
	for i := range n {
		fmt.Fprintf(&s, " t%d", i)
	}
	s.WriteString("\n")
	for i := range n {
		if i == 0 {
			s.WriteString("t0:\n\t/bin/true\n")
		} else {
			fmt.Fprintf(&s, "t%d: t%d\n\t/bin/true\n", i, i-1)
		}
	}
	return s.String()
}

func makeWide(n int) string {
	var s strings.Builder
	var targets strings.Builder
	for i := range n {
		fmt.Fprintf(&targets, " t%d", i)
	}
	fmt.Fprintf(&s, "all:%s\n.PHONY: all%s\n", targets.String(), targets.String())
	for i := range n {
		fmt.Fprintf(&s, "t%d:\n\t/bin/true\n", i)
	}
	return s.String()
}

// taskChain and taskWide are go-task v3 Taskfiles of the same graphs.
func taskChain(n int) string {
	var s strings.Builder
	s.WriteString("version: '3'\ntasks:\n")
	for i := range n {
		fmt.Fprintf(&s, "  t%d:\n", i)
		if i > 0 {
			fmt.Fprintf(&s, "    deps: [t%d]\n", i-1)
		}
		s.WriteString("    cmds: [/bin/true]\n")
	}
	return s.String()
}

func taskWide(n int) string {
	var s strings.Builder
	s.WriteString("version: '3'\ntasks:\n  all:\n    deps:\n")
	for i := range n {
		fmt.Fprintf(&s, "      - t%d\n", i)
	}
	for i := range n {
		fmt.Fprintf(&s, "  t%d:\n    cmds: [/bin/true]\n", i)
	}
	return s.String()
}

func lines(n int, line string) string { return strings.Repeat(line+"\n", n) }

// ---- workloads ----

// chain: n sequential /bin/true steps, recorded, against make over a chain of n targets, a bash loop
// and go-task.
func (b *bench) chain() ([]row, error) {
	n := b.sz.chain
	fExec, err := b.write("chain-exec.yaml", playbookSteps("chain", 1, n, chainStep("exec: [/bin/true]")))
	if err != nil {
		return nil, err
	}
	fRun, _ := b.write("chain-run.yaml", playbookSteps("chain-run", 1, n, chainStep("run: /bin/true")))
	mk, _ := b.write("chain.mk", makeChain(n))
	cmds := []*command{
		b.pbRun("playbook (exec)", "chain.db", fExec),
		b.pbRun("playbook (run: bash -c)", "chain.db", fRun),
		{name: "bash loop", argv: []string{"bash", "-c", fmt.Sprintf("for ((i=0; i<%d; i++)); do /bin/true; done", n)}},
	}
	cmds = b.withBaseline(cmds, "chain.db", fExec)
	if b.make != "" {
		cmds = append(cmds, &command{name: "make", argv: []string{b.make, "-f", mk}, dir: b.work})
	}
	if b.task != "" {
		tf, _ := b.write("chain.Taskfile.yml", taskChain(n))
		cmds = append(cmds, &command{name: "go-task", argv: []string{b.task, "-t", tf, fmt.Sprintf("t%d", n-1)}, dir: b.work})
	}
	rounds := b.roundsOr(15, 3)
	res, err := measure("chain", cmds, rounds)
	if err != nil {
		return nil, err
	}
	b.detail(fmt.Sprintf("chain %d", n), res, "playbook (exec)", "playbook (run: bash -c)", "make", "bash loop", "go-task", "baseline")
	w := fmt.Sprintf("chain: %d x /bin/true, recorded", n)
	var rows []row
	rows = append(rows, b.vsPeer(w+" (exec)", res, "playbook (exec)", "make", b.make != "", "make (chain of targets)", 1.0, "apt-get install -y make"))
	rows = append(rows, b.vsInfo(w+" (exec)", res, "playbook (exec)", "bash loop"))
	if b.task != "" {
		rows = append(rows, b.vsInfo(w+" (exec)", res, "playbook (exec)", "go-task"))
	} else {
		rows = append(rows, row{workload: w + " (exec)", peer: "go-task: not installed", goal: "info", met: "n/a"})
	}
	if b.make != "" {
		rows = append(rows, b.vsInfo(w+" (run: bash -c)", res, "playbook (run: bash -c)", "make"))
	}
	rows = append(rows, b.baselineRow(w+" (exec)", res, "playbook (exec)")...)
	return rows, nil
}

// wide: n independent /bin/true steps at max_parallel 8 against make -j8, go-task --concurrency 8 and
// xargs -P8.
func (b *bench) wide() ([]row, error) {
	n := b.sz.wide
	fExec, err := b.write("wide-exec.yaml", playbookSteps("wide", 8, n, wideStep("exec: [/bin/true]")))
	if err != nil {
		return nil, err
	}
	fRun, _ := b.write("wide-run.yaml", playbookSteps("wide-run", 8, n, wideStep("run: /bin/true")))
	mk, _ := b.write("wide.mk", makeWide(n))
	in, _ := b.write("wide.lines", lines(n, "x"))
	cmds := []*command{
		b.pbRun("playbook (exec)", "wide.db", fExec),
		b.pbRun("playbook (run: bash -c)", "wide.db", fRun),
		{name: "xargs -P8", argv: []string{"xargs", "-P8", "-n1", "/bin/true"}, stdin: in},
	}
	cmds = b.withBaseline(cmds, "wide.db", fExec)
	if b.make != "" {
		cmds = append(cmds, &command{name: "make -j8", argv: []string{b.make, "-j8", "-f", mk}, dir: b.work})
	}
	if b.task != "" {
		tf, _ := b.write("wide.Taskfile.yml", taskWide(n))
		cmds = append(cmds, &command{name: "go-task --concurrency 8", argv: []string{b.task, "--concurrency", "8", "-t", tf, "all"}, dir: b.work})
	}
	res, err := measure("wide", cmds, b.roundsOr(15, 3))
	if err != nil {
		return nil, err
	}
	b.detail(fmt.Sprintf("wide %d, max_parallel 8", n), res, "playbook (exec)", "playbook (run: bash -c)", "make -j8", "xargs -P8", "go-task --concurrency 8", "baseline")
	w := fmt.Sprintf("wide: %d x /bin/true, max_parallel 8", n)
	var rows []row
	rows = append(rows, b.vsPeer(w+" (exec)", res, "playbook (exec)", "make -j8", b.make != "", "make -j8", 1.0, "apt-get install -y make"))
	if b.task != "" {
		rows = append(rows, b.vsInfo(w+" (exec)", res, "playbook (exec)", "go-task --concurrency 8"))
	} else {
		rows = append(rows, row{workload: w + " (exec)", peer: "go-task: not installed", goal: "info", met: "n/a"})
	}
	rows = append(rows, b.vsInfo(w+" (exec)", res, "playbook (exec)", "xargs -P8"))
	if b.make != "" {
		rows = append(rows, b.vsInfo(w+" (run: bash -c)", res, "playbook (run: bash -c)", "make -j8"))
	}
	rows = append(rows, b.baselineRow(w+" (exec)", res, "playbook (exec)")...)
	return rows, nil
}

// vsPeer is a row with a ratio goal against a peer that may be missing.
func (b *bench) vsPeer(w string, res results, pb, peer string, present bool, peerLabel string, goal float64, install string) row {
	r := row{workload: w, goal: fmt.Sprintf("ratio <= %.1f", goal), runs: len(res[pb])}
	if !present {
		r.playbook = fmtSec(res.medianWall(pb))
		r.peer = peerLabel + ": missing (" + install + ")"
		r.met = "n/a"
		return r
	}
	ratio := res.pairedRatio(pb, 1, peer, 1)
	r.playbook = fmtSec(res.medianWall(pb))
	r.peer = peer + " " + fmtSec(res.medianWall(peer))
	r.ratio = fmtRatio(ratio)
	r.met = metIf(ratio <= goal)
	return r
}

func (b *bench) vsInfo(w string, res results, pb, peer string) row {
	return row{workload: w, playbook: fmtSec(res.medianWall(pb)), peer: peer + " " + fmtSec(res.medianWall(peer)),
		ratio: fmtRatio(res.pairedRatio(pb, 1, peer, 1)), goal: "info", met: "-", runs: len(res[pb])}
}

// fanOut: steps of sleep 0.2 at max_parallel p, so that the ideal is 0.8 s. The goal row runs sleep
// directly (exec:), as xargs does; the run: variant (bash -c "sleep 0.2": a shell start per step) is
// reported for information.
func (b *bench) fanOut() ([]row, error) {
	n, p := b.sz.fanSteps, b.sz.fanPar
	ideal := fanSleep * float64((n+p-1)/p)
	sleep := strconv.FormatFloat(fanSleep, 'g', -1, 64)
	f, err := b.write("fanout-exec.yaml", playbookSteps("fanout", p, n, wideStep(fmt.Sprintf("exec: [sleep, %q]", sleep))))
	if err != nil {
		return nil, err
	}
	fRun, _ := b.write("fanout-run.yaml", playbookSteps("fanout-run", p, n, wideStep("run: sleep "+sleep)))
	in, _ := b.write("fanout.lines", lines(n, sleep))
	xargs := fmt.Sprintf("xargs -P%d sleep", p)
	cmds := []*command{
		b.pbRun("playbook (exec)", "fanout.db", f),
		b.pbRun("playbook (run: bash -c)", "fanout.db", fRun),
		{name: xargs, argv: []string{"xargs", fmt.Sprintf("-P%d", p), "-n1", "sleep"}, stdin: in},
	}
	cmds = b.withBaseline(cmds, "fanout.db", f)
	res, err := measure("fan-out", cmds, b.roundsOr(9, 3))
	if err != nil {
		return nil, err
	}
	b.detail(fmt.Sprintf("fan-out %d x sleep %s, p%d", n, sleep, p), res, "playbook (exec)", "playbook (run: bash -c)", xargs, "baseline")
	w := fmt.Sprintf("fan-out: %d x sleep %s, max_parallel %d", n, sleep, p)
	var rows []row
	for _, v := range []string{"exec", "run: bash -c"} {
		name := "playbook (" + v + ")"
		t := res.medianWall(name)
		r := row{workload: w + " (" + v + ")", playbook: fmtSec(t), peer: fmt.Sprintf("ideal %s", fmtSec(ideal)),
			ratio: fmtRatio(t / ideal), goal: "within 10% (<= 1.10x)", met: metIf(t/ideal <= 1.10), runs: len(res[name])}
		if v != "exec" {
			r.goal, r.met = "info", "-"
		}
		rows = append(rows, r)
	}
	rows = append(rows, b.vsInfo(w+" (exec)", res, "playbook (exec)", xargs))
	rows = append(rows, b.baselineRow(w+" (exec)", res, "playbook (exec)")...)
	return rows, nil
}

// flood: one step writing the flood size to stdout, against head | cat; and the runner's peak RSS.
func (b *bench) flood() ([]row, error) {
	size := strconv.FormatInt(b.sz.flood, 10)
	f, err := b.write("flood.yaml", fmt.Sprintf("version: 1\nname: flood\nsteps:\n  - id: flood\n    exec: [head, -c, %q, /dev/zero]\n", size))
	if err != nil {
		return nil, err
	}
	peer := "head -c | cat >/dev/null"
	cmds := []*command{
		b.pbRun("playbook", "flood.db", f),
		{name: peer, argv: []string{"sh", "-c", "head -c " + size + " /dev/zero | cat >/dev/null"}},
	}
	cmds = b.withBaseline(cmds, "flood.db", f)
	res, err := measure("flood", cmds, b.roundsOr(9, 3))
	if err != nil {
		return nil, err
	}
	b.detail("flood "+humanBytes(b.sz.flood), res, "playbook", peer, "baseline")
	w := fmt.Sprintf("flood: one step writing %s to stdout", humanBytes(b.sz.flood))
	ratio := res.pairedRatio("playbook", 1, peer, 1)
	rss := float64(res.maxRSS("playbook")) / 1024
	rows := []row{
		{workload: w, playbook: fmtSec(res.medianWall("playbook")), peer: peer + " " + fmtSec(res.medianWall(peer)),
			ratio: fmtRatio(ratio), goal: "ratio <= 1.3", met: metIf(ratio <= 1.3), runs: len(res["playbook"])},
		{workload: w + ": runner peak RSS", playbook: fmt.Sprintf("%.1f MiB (max)", rss), peer: "-", ratio: "-",
			goal: "<= 64 MiB", met: metIf(rss <= 64), runs: len(res["playbook"])},
	}
	rows = append(rows, b.baselineRow(w, res, "playbook")...)
	if len(res["baseline"]) > 0 {
		rows = append(rows, row{workload: w + ": runner peak RSS", playbook: fmt.Sprintf("%.1f MiB (max)", rss),
			peer: fmt.Sprintf("baseline %.1f MiB (max)", float64(res.maxRSS("baseline"))/1024), goal: "before/after", met: "-",
			runs: len(res["playbook"])})
	}
	return rows, nil
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d B", n)
}

// startup: one /bin/true step, recorded, against /bin/true alone and sh -c true.
func (b *bench) startup() ([]row, error) {
	f, err := b.write("one.yaml", "version: 1\nname: one\nsteps:\n  - id: one\n    exec: [/bin/true]\n")
	if err != nil {
		return nil, err
	}
	cmds := []*command{
		b.pbRun("playbook", "startup.db", f),
		{name: "/bin/true", argv: []string{"/bin/true"}},
		{name: "sh -c true", argv: []string{"sh", "-c", "true"}},
	}
	cmds = b.withBaseline(cmds, "startup.db", f)
	res, err := measure("startup", cmds, b.roundsOr(31, 5))
	if err != nil {
		return nil, err
	}
	b.detail("startup", res, "playbook", "/bin/true", "sh -c true", "baseline")
	w := "startup: one /bin/true step, recorded"
	var rows []row
	for _, peer := range []string{"/bin/true", "sh -c true"} {
		over := res.pairedDiff("playbook", peer)
		rows = append(rows, row{workload: w, playbook: fmtSec(res.medianWall("playbook")),
			peer: peer + " " + fmtSec(res.medianWall(peer)), ratio: fmt.Sprintf("+%.1f ms", over*1e3),
			goal: "report overhead", met: "-", runs: len(res["playbook"])})
	}
	if len(res["baseline"]) > 0 {
		rows = append(rows, row{workload: w, playbook: fmtSec(res.medianWall("playbook")),
			peer: "baseline " + fmtSec(res.medianWall("baseline")), ratio: fmt.Sprintf("%+.1f ms", res.pairedDiff("playbook", "baseline")*1e3),
			goal: "before/after", met: "-", runs: len(res["playbook"])})
	}
	return rows, nil
}

// scale: a fan-out tree of scaleBig steps against the same at scaleSml: validate time, and the run's
// per-step cost.
func (b *bench) scale() ([]row, error) {
	big, sml := b.sz.scaleBig, b.sz.scaleSml
	fBig, err := b.write("tree-big.yaml", playbookSteps("tree", 8, big, treeStep))
	if err != nil {
		return nil, err
	}
	fSml, _ := b.write("tree-small.yaml", playbookSteps("tree", 8, sml, treeStep))
	vBig := fmt.Sprintf("validate %d", big)
	vSml := fmt.Sprintf("validate %d", sml)
	rBig := fmt.Sprintf("run %d", big)
	rSml := fmt.Sprintf("run %d", sml)
	cmds := []*command{
		{name: vBig, argv: []string{b.pb, "validate", fBig}},
		{name: vSml, argv: []string{b.pb, "validate", fSml}},
		b.pbRun(rBig, "scale.db", fBig),
		b.pbRun(rSml, "scale.db", fSml),
	}
	res, err := measure("scale", cmds, b.roundsOr(5, 3))
	if err != nil {
		return nil, err
	}
	b.detail("scale tree, max_parallel 8", res, vBig, vSml, rBig, rSml)
	vt := res.medianWall(vBig)
	per := res.pairedRatio(rBig, 1/float64(big), rSml, 1/float64(sml))
	return []row{
		{workload: fmt.Sprintf("scale: validate a %d-step fan-out tree", big), playbook: fmtSec(vt),
			peer: fmt.Sprintf("%d steps %s", sml, fmtSec(res.medianWall(vSml))), ratio: "-", goal: "< 0.5 s",
			met: metIf(vt < 0.5), runs: len(res[vBig])},
		{workload: fmt.Sprintf("scale: run the tree, per-step cost at %d vs %d (exec /bin/true, p8)", big, sml),
			playbook: fmtSec(res.medianWall(rBig)/float64(big)) + "/step", peer: fmtSec(res.medianWall(rSml)/float64(sml)) + "/step",
			ratio: fmtRatio(per), goal: "within 20% (<= 1.20x)", met: metIf(per <= 1.2), runs: len(res[rBig])},
	}, nil
}

// store: listing the 20 newest of storeRuns recorded runs, and the bytes a recorded step takes.
func (b *bench) store() ([]row, error) {
	if b.seeddb == "" {
		return nil, fmt.Errorf("no seeddb binary (build it with: go build -o DIR/seeddb ./bench/seeddb)")
	}
	n := b.sz.storeRuns
	seed, err := b.write("seed.yaml", `version: 1
name: nightly-backup
params:
  target: {default: staging, enum: [staging, prod]}
steps:
  - id: snapshot
    run: 'echo "snapshot of $PLAYBOOK_PARAM_TARGET taken"; echo "id=snap-42" >> "$PLAYBOOK_OUTPUT"'
  - id: upload
    needs: [snapshot]
    exec: [/bin/echo, "uploaded ${{ steps.snapshot.outputs.id }}"]
  - id: verify
    needs: [upload]
    run: 'echo checksum ok; echo "1 warning" >&2'
  - id: notify
    needs: [verify]
    if: failure()
    exec: [/bin/true]
`)
	if err != nil {
		return nil, err
	}
	small := b.path("store-small.db")
	bigDB := b.path("store.db")
	for _, p := range []string{small, bigDB} {
		for _, suf := range []string{"", "-wal", "-shm"} {
			os.Remove(p + suf)
		}
	}
	progressf("store: recording template runs")
	for i := 0; i < 5; i++ {
		for _, db := range []string{small, bigDB} {
			if _, err := runOnce(&command{name: "seed", argv: []string{b.pb, "run", "--db", db, seed}, dir: b.work}); err != nil {
				return nil, err
			}
		}
	}
	progressf("store: copying them to %d runs", n)
	if out, err := exec.Command(b.seeddb, "-db", bigDB, "-runs", strconv.Itoa(n)).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("seeddb: %v: %s", err, out)
	}
	cmds := []*command{
		{name: "runs --limit 20", argv: []string{b.pb, "runs", "--db", bigDB, "--limit", "20"}},
		{name: "runs --limit 20 (5 runs)", argv: []string{b.pb, "runs", "--db", small, "--limit", "20"}},
	}
	res, err := measure("store", cmds, b.roundsOr(31, 5))
	if err != nil {
		return nil, err
	}
	b.detail(fmt.Sprintf("store %d runs", n), res, "runs --limit 20", "runs --limit 20 (5 runs)")
	t := res.medianWall("runs --limit 20")
	rows := []row{{workload: fmt.Sprintf("store: `runs --limit 20` over %d runs", n), playbook: fmtSec(t),
		peer:  fmt.Sprintf("same over 5 runs %s", fmtSec(res.medianWall("runs --limit 20 (5 runs)"))),
		ratio: fmtRatio(res.pairedRatio("runs --limit 20", 1, "runs --limit 20 (5 runs)", 1)),
		goal:  "< 100 ms", met: metIf(t < 0.1), runs: len(res["runs --limit 20"])}}

	st, err := b.dbStats(bigDB)
	if err != nil {
		return nil, err
	}
	rows = append(rows, row{workload: fmt.Sprintf("store: bytes per recorded run (%d runs of 4 steps with small output)", n),
		playbook: fmt.Sprintf("%.0f B/run, %.0f B/step", float64(st.UsedBytes)/float64(st.Runs), float64(st.UsedBytes)/float64(st.Steps)),
		peer:     fmt.Sprintf("file %.1f MiB", float64(st.FileBytes)/(1<<20)), ratio: "-", goal: "report", met: "-"})
	if _, err := os.Stat(b.path("chain.db")); err == nil {
		st, err := b.dbStats(b.path("chain.db"))
		if err != nil {
			return nil, err
		}
		rows = append(rows, row{workload: "store: bytes per recorded step (the chain's /bin/true steps)",
			playbook: fmt.Sprintf("%.0f B/step", float64(st.UsedBytes)/float64(st.Steps)),
			peer:     fmt.Sprintf("%d steps in %d runs", st.Steps, st.Runs), ratio: "-", goal: "report", met: "-"})
	}
	return rows, nil
}

type dbStats struct {
	Runs, Steps, Attempts int64
	UsedBytes, FileBytes  int64
}

func (b *bench) dbStats(db string) (dbStats, error) {
	var st dbStats
	out, err := exec.Command(b.seeddb, "-db", db, "-stats").Output()
	if err != nil {
		return st, fmt.Errorf("seeddb -stats %s: %v", db, err)
	}
	return st, json.Unmarshal(out, &st)
}
