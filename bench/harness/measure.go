package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"
)

// command is one measured program: its argv, run in dir with all output sent to /dev/null.
type command struct {
	name  string // table label: "playbook", "make -j8", ...
	argv  []string
	dir   string
	stdin string // a file to read as stdin; "" = /dev/null
	env   []string
}

// sample is one run of a command.
type sample struct {
	wall  time.Duration
	cpu   time.Duration // user + system, the command and the children it waited for
	rssKB int64         // ru_maxrss of wait4: the largest of the process and its reaped descendants
}

// runOnce runs c once and measures it. stdout and stderr go to /dev/null (every tool's normal output,
// discarded the same way); a failure is run again with stderr captured, to say why.
func runOnce(c *command) (sample, error) {
	devNull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return sample{}, err
	}
	defer devNull.Close()
	cmd := exec.Command(c.argv[0], c.argv[1:]...)
	cmd.Dir = c.dir
	cmd.Stdout, cmd.Stderr, cmd.Stdin = devNull, devNull, devNull
	if c.env != nil {
		cmd.Env = append(os.Environ(), c.env...)
	}
	if c.stdin != "" {
		in, err := os.Open(c.stdin)
		if err != nil {
			return sample{}, err
		}
		defer in.Close()
		cmd.Stdin = in
	}
	start := time.Now()
	err = cmd.Run()
	wall := time.Since(start)
	if err != nil {
		return sample{}, fmt.Errorf("%s: %v%s", strings.Join(c.argv, " "), err, explain(c))
	}
	s := sample{wall: wall, cpu: cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		s.rssKB = ru.Maxrss
	}
	return s, nil
}

// explain runs a failed command again, capturing the end of its stderr.
func explain(c *command) string {
	cmd := exec.Command(c.argv[0], c.argv[1:]...)
	cmd.Dir = c.dir
	if c.env != nil {
		cmd.Env = append(os.Environ(), c.env...)
	}
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if c.stdin != "" {
		if in, err := os.Open(c.stdin); err == nil {
			defer in.Close()
			cmd.Stdin = in
		}
	}
	_ = cmd.Run()
	msg := strings.TrimSpace(errb.String())
	if len(msg) > 600 {
		msg = "..." + msg[len(msg)-600:]
	}
	if msg == "" {
		return ""
	}
	return ": " + msg
}

// results holds every round's sample of every command of one workload, index-aligned by round.
type results map[string][]sample

// measure runs the commands in paired rounds: each round runs every command once, one after the other,
// starting with a different command each round so that none always goes first (or last) on a machine
// whose load drifts. One warm-up round (page cache, database files, go-task's and make's start-up) is
// not counted. It stops at the first failure.
func measure(label string, cmds []*command, rounds int) (results, error) {
	res := results{}
	for r := -1; r < rounds; r++ {
		if r >= 0 {
			progressf("%s: round %d/%d", label, r+1, rounds)
		} else {
			progressf("%s: warm-up", label)
		}
		start := 0
		if r >= 0 {
			start = r % len(cmds)
		}
		for i := range cmds {
			c := cmds[(start+i)%len(cmds)]
			s, err := runOnce(c)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", c.name, err)
			}
			if r >= 0 {
				res[c.name] = append(res[c.name], s)
			}
		}
	}
	progressf("")
	return res, nil
}

var progressOn = true

// progressf rewrites one status line on stderr when it is a terminal.
func progressf(format string, args ...any) {
	if !progressOn {
		return
	}
	fmt.Fprintf(os.Stderr, "\r\x1b[K"+format, args...)
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func walls(ss []sample) []float64 {
	out := make([]float64, len(ss))
	for i, s := range ss {
		out[i] = s.wall.Seconds()
	}
	return out
}

// medianWall is the median wall time in seconds.
func (r results) medianWall(name string) float64 { return median(walls(r[name])) }

// medianCPU is the median CPU time (user + system) in seconds.
func (r results) medianCPU(name string) float64 {
	out := make([]float64, len(r[name]))
	for i, s := range r[name] {
		out[i] = s.cpu.Seconds()
	}
	return median(out)
}

// paired is the median over rounds of f(a's wall time, b's wall time in the same round), in seconds:
// the figures that the machine's drifting load affects least.
func (r results) paired(a, b string, f func(x, y float64) float64) float64 {
	as, bs := r[a], r[b]
	n := min(len(as), len(bs))
	v := make([]float64, n)
	for i := range n {
		v[i] = f(as[i].wall.Seconds(), bs[i].wall.Seconds())
	}
	return median(v)
}

// pairedRatio is the paired median of a's time divided by b's, each scaled by its own factor (per-step
// costs).
func (r results) pairedRatio(a string, fa float64, b string, fb float64) float64 {
	return r.paired(a, b, func(x, y float64) float64 { return (x * fa) / (y * fb) })
}

// pairedDiff is the paired median of a's time minus b's, in seconds.
func (r results) pairedDiff(a, b string) float64 {
	return r.paired(a, b, func(x, y float64) float64 { return x - y })
}

// maxRSS is the largest peak RSS seen, in KiB.
func (r results) maxRSS(name string) int64 {
	var m int64
	for _, s := range r[name] {
		m = max(m, s.rssKB)
	}
	return m
}

var errSkip = errors.New("skipped")
