package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/playbookhq/playbook/pkg/run"
)

// TestMaxParallelBelowOneIsRefused: --max-parallel and the playbook's max_parallel accept the same
// range, 1 and up; 0 and -1 are usage errors (exit 2) that name the flag or key, and nothing runs.
func TestMaxParallelBelowOneIsRefused(t *testing.T) {
	dir := t.TempDir()
	ok := filepath.Join(dir, "ok.yaml")
	if err := os.WriteFile(ok, []byte("version: 1\nname: mp\nsteps:\n  - id: a\n    run: echo ran\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		yaml string // the playbook; "" = ok.yaml
		args []string
		want string
	}{
		{name: "flag 0", args: []string{"--max-parallel", "0"}, want: `invalid argument "0" for "--max-parallel" flag: want a whole number of steps from 1 up`},
		{name: "flag -1", args: []string{"--max-parallel=-1"}, want: `invalid argument "-1" for "--max-parallel" flag: want a whole number of steps from 1 up`},
		{name: "key 0", yaml: "version: 1\nname: mp\nmax_parallel: 0\nsteps:\n  - id: a\n    run: echo ran\n", want: "max_parallel must be at least 1, not 0"},
		{name: "key -1", yaml: "version: 1\nname: mp\nmax_parallel: -1\nsteps:\n  - id: a\n    run: echo ran\n", want: "max_parallel must be at least 1, not -1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := ok
			if tc.yaml != "" {
				file = filepath.Join(t.TempDir(), "mp.yaml")
				if err := os.WriteFile(file, []byte(tc.yaml), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			db := filepath.Join(t.TempDir(), "pb.db")
			cmds := [][]string{append([]string{"run", file, "--db", db}, tc.args...)}
			if tc.yaml != "" {
				cmds = append(cmds, []string{"validate", file})
			}
			for _, cmd := range cmds {
				r := runCLI(t, nil, cmd...)
				if r.Code != run.ExitUsage || !strings.Contains(r.Stderr, tc.want) {
					t.Errorf("%v: exit %d, stderr %q; want %d and %q", cmd, r.Code, r.Stderr, run.ExitUsage, tc.want)
				}
				if strings.Contains(r.Stdout, "ran") {
					t.Errorf("%v: a step ran:\n%s", cmd, r.Stdout)
				}
			}
			if _, err := os.Stat(db); err == nil {
				t.Errorf("a refused run created the database")
			}
		})
	}
	// 1 is accepted.
	r := runCLI(t, nil, "run", ok, "--db", filepath.Join(t.TempDir(), "pb.db"), "--max-parallel", "1")
	if r.Code != 0 || !strings.Contains(r.Stdout, "ran") {
		t.Errorf("--max-parallel 1: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
}
