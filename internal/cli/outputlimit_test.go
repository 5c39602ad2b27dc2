package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/playbookhq/playbook/pkg/run"
)

// TestOutputLimitFlag: --output-limit reads sizes with the playbook's parser and range. A size that
// overflows an int64 (17179869185GiB is 2^64 + 1GiB, which the CLI's former copy of the parser wrapped
// around to 1GiB) is a usage error (exit 2) that names the flag and the value, and nothing runs; every
// form the flag took before still runs. A playbook's output_limit of the same size is refused alike.
func TestOutputLimitFlag(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "ok.yaml")
	if err := os.WriteFile(file, []byte("version: 1\nname: ol\nsteps:\n  - id: a\n    run: echo ran\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for in, want := range map[string]string{
		"17179869185GiB": `"17179869185GiB" is too large`,
		"2GiB":           "from 1 byte to 1GiB",
		"0":              "from 1 byte to 1GiB",
		"-1":             `"-1" is not a size`,
		"1.5MiB":         `"1.5MiB" is not a size`,
		"lots":           `"lots" is not a size`,
	} {
		db := filepath.Join(t.TempDir(), "pb.db")
		r := runCLI(t, nil, "run", file, "--db", db, "--output-limit", in)
		if r.Code != run.ExitUsage || !strings.Contains(r.Stderr, "--output-limit") || !strings.Contains(r.Stderr, want) {
			t.Errorf("--output-limit %s: exit %d, stderr %q; want %d and %q", in, r.Code, r.Stderr, run.ExitUsage, want)
		}
		if strings.Contains(r.Stdout, "ran") {
			t.Errorf("--output-limit %s: a step ran:\n%s", in, r.Stdout)
		}
		if _, err := os.Stat(db); err == nil {
			t.Errorf("--output-limit %s: a refused run created the database", in)
		}
	}
	// The playbook's output_limit goes through the same parser: the same size is refused there too.
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, []byte("version: 1\nname: ol\noutput_limit: 17179869185GiB\nsteps:\n  - id: a\n    run: echo ran\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range [][]string{{"run", big, "--db", filepath.Join(t.TempDir(), "pb.db")}, {"validate", big}} {
		r := runCLI(t, nil, cmd...)
		want := big + ":3:15: output_limit must be between 1 byte and 1GiB, not 17179869185GiB"
		if r.Code != run.ExitUsage || !strings.Contains(r.Stderr, want) || strings.Contains(r.Stdout, "ran") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want %d and %q", cmd, r.Code, r.Stdout, r.Stderr, run.ExitUsage, want)
		}
	}
	for _, in := range []string{"65536", "10B", "512KiB", "64 KiB", "1MiB", "1GiB", "2KB", "2MB", "1GB"} {
		r := runCLI(t, nil, "run", file, "--db", filepath.Join(t.TempDir(), "pb.db"), "--output-limit", in)
		if r.Code != 0 || !strings.Contains(r.Stdout, "ran") {
			t.Errorf("--output-limit %s: exit %d\n%s%s", in, r.Code, r.Stdout, r.Stderr)
		}
	}
}
