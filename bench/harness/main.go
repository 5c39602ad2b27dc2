// Command harness runs the benchmark suite of bench/run.sh: it generates the workloads, runs playbook
// and its peers in paired rounds (every command once per round, the order rotating) and prints a table
// of medians and paired ratios.
//
// A Go harness rather than hyperfine: it needs nothing but the Go toolchain the project already needs,
// it can alternate several commands within one round (hyperfine runs each command's runs back to back,
// so a load change between them biases the ratio), it computes the ratio per round (the paired figure)
// before taking the median, and it reads each run's peak RSS from wait4's rusage.
//
//	go run ./bench/harness -playbook BIN [-quick] [-rounds N] [-only chain,wide,...]
//
// bench/run.sh builds the binaries and finds the peers; run it rather than this directly.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
	"unicode/utf8"
)

var allWorkloads = []string{"chain", "wide", "fanout", "flood", "startup", "scale", "store"}

func main() {
	var (
		pb      = flag.String("playbook", "", "the playbook binary to measure (required)")
		quick   = flag.Bool("quick", false, "CI size: 100 steps, a 64 MiB flood, 3 rounds; exit 0 whatever the ratios")
		rounds  = flag.Int("rounds", 0, "rounds per workload (default: each workload's own)")
		only    = flag.String("only", "", "comma-separated workloads to run: "+strings.Join(allWorkloads, ","))
		work    = flag.String("work", "bench/.work", "folder for generated files and databases")
		task    = flag.String("task", "", "go-task binary (empty: not compared)")
		mk      = flag.String("make", "", "make binary (empty: not compared)")
		seeddb  = flag.String("seeddb", "", "bench/seeddb binary (needed by the store workload)")
		base    = flag.String("baseline", "", "another playbook binary (say, a build of main) to measure side by side: adds before/after rows")
		out     = flag.String("out", "", "also write the report to this file")
		verbose = flag.Bool("progress", isTerminal(os.Stderr), "show progress on stderr")
	)
	flag.Parse()
	progressOn = *verbose
	if *pb == "" {
		fmt.Fprintln(os.Stderr, "harness: -playbook is required")
		os.Exit(2)
	}
	b := &bench{sz: fullSizes, quick: *quick, pb: abs(*pb), task: abs(*task), make: abs(*mk), seeddb: abs(*seeddb), base: abs(*base), rounds: *rounds}
	if *quick {
		b.sz = quickSizes
	}
	mode := "full"
	if *quick {
		mode = "quick"
	}
	b.work = filepath.Join(abs(*work), mode)
	if err := os.MkdirAll(b.work, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "harness:", err)
		os.Exit(2)
	}
	// Databases of an earlier suite run would make this one's differ: start from nothing.
	for _, db := range []string{"chain", "wide", "fanout", "flood", "startup", "scale",
		"base-chain", "base-wide", "base-fanout", "base-flood", "base-startup"} {
		for _, suf := range []string{".db", ".db-wal", ".db-shm"} {
			os.Remove(filepath.Join(b.work, db+suf))
		}
	}
	os.RemoveAll(filepath.Join(b.work, "locks"))

	selected := allWorkloads
	if *only != "" {
		selected = strings.Split(*only, ",")
	}
	fns := map[string]func() ([]row, error){
		"chain": b.chain, "wide": b.wide, "fanout": b.fanOut, "flood": b.flood,
		"startup": b.startup, "scale": b.scale, "store": b.store,
	}
	var rows []row
	failed := 0
	started := time.Now()
	for _, name := range selected {
		fn := fns[strings.TrimSpace(name)]
		if fn == nil {
			fmt.Fprintf(os.Stderr, "harness: unknown workload %q (have %s)\n", name, strings.Join(allWorkloads, ","))
			os.Exit(2)
		}
		rs, err := fn()
		progressf("")
		if err != nil {
			failed++
			rows = append(rows, row{workload: name, met: "ERROR", playbook: oneLine(err.Error())})
			fmt.Fprintf(os.Stderr, "harness: workload %s failed: %v\n", name, err)
			continue
		}
		rows = append(rows, rs...)
	}

	var w io.Writer = os.Stdout
	var f *os.File
	if *out != "" {
		var err error
		if f, err = os.Create(*out); err != nil {
			fmt.Fprintln(os.Stderr, "harness:", err)
			os.Exit(2)
		}
		w = io.MultiWriter(os.Stdout, f)
	}
	report(w, b, rows, mode, time.Since(started))
	if f != nil {
		f.Close()
	}

	missed := 0
	for _, r := range rows {
		if r.met == "NO" || r.met == "n/a" && strings.HasPrefix(r.goal, "ratio") {
			missed++
		}
	}
	switch {
	case failed > 0:
		os.Exit(2) // a workload did not run: the suite itself is broken
	case *quick:
		os.Exit(0) // CI: too small and too noisy to judge the goals
	case missed > 0:
		os.Exit(1)
	}
}

func report(w io.Writer, b *bench, rows []row, mode string, took time.Duration) {
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Fprintf(w, "# playbook benchmarks (%s mode)\n\n", mode)
	fmt.Fprintf(w, "%s; %s/%s, %d CPUs, load %s; suite took %s.\n", time.Now().UTC().Format(time.RFC3339),
		runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), strings.Join(strings.Fields(string(load))[:3], " "), took.Round(time.Second))
	fmt.Fprintf(w, "playbook: %s\n", version(b.pb))
	if b.base != "" {
		fmt.Fprintf(w, "baseline: %s (%s)\n", b.base, version(b.base))
	}
	fmt.Fprintf(w, "Times are medians of whole-process wall times; ratios are medians of per-round ratios (paired:\n")
	fmt.Fprintf(w, "each round runs every command of a workload once, rotating the order; one warm-up round is not\n")
	fmt.Fprintf(w, "counted). Every tool's stdout and stderr go to /dev/null; playbook prints its plain text lines.\n\n")
	table := [][]string{{"workload", "playbook", "peer", "ratio", "goal", "met", "runs"}}
	for _, r := range rows {
		runs := ""
		if r.runs > 0 {
			runs = fmt.Sprint(r.runs)
		}
		table = append(table, []string{r.workload, dash(r.playbook), dash(r.peer), dash(r.ratio), dash(r.goal), dash(r.met), dash(runs)})
	}
	writeTable(w, table)
	if len(b.details) > 0 {
		fmt.Fprintf(w, "\nPer command (medians; max rss is the largest peak over the rounds):\n")
		for _, d := range b.details {
			fmt.Fprintln(w, "  "+d)
		}
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

func version(bin string) string {
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		return bin
	}
	return strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
}

func abs(p string) string {
	if p == "" {
		return ""
	}
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// writeTable prints a Markdown table with padded columns.
func writeTable(w io.Writer, table [][]string) {
	width := make([]int, len(table[0]))
	for _, r := range table {
		for i, c := range r {
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	line := func(cells []string) {
		var b strings.Builder
		for i, c := range cells {
			b.WriteString("| ")
			b.WriteString(c)
			b.WriteString(strings.Repeat(" ", width[i]-utf8.RuneCountInString(c)+1))
		}
		b.WriteString("|\n")
		io.WriteString(w, b.String())
	}
	line(table[0])
	sep := make([]string, len(width))
	for i := range sep {
		sep[i] = strings.Repeat("-", width[i])
	}
	line(sep)
	for _, r := range table[1:] {
		line(r)
	}
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
