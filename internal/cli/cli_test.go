package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/playbookhq/playbook/pkg/run"
)

// cliResult is what one invocation of the command line produced.
type cliResult struct {
	Stdout, Stderr string
	Code           int
}

// runCLI runs the command line with args and an environment made of env ("KEY=value" entries; nothing
// from the real environment leaks in), capturing its output.
func runCLI(t *testing.T, env []string, args ...string) cliResult {
	t.Helper()
	var out, errOut bytes.Buffer
	vars := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	sys := &System{
		In:     strings.NewReader(""),
		Out:    &out,
		ErrOut: &errOut,
		Getenv: func(k string) string { return vars[k] },
	}
	code := Main(args, sys)
	return cliResult{Stdout: out.String(), Stderr: errOut.String(), Code: code}
}

func TestUnknownCommandIsUsageError(t *testing.T) {
	r := runCLI(t, nil, "frobnicate")
	if r.Code != run.ExitUsage {
		t.Fatalf("exit code = %d, want %d; stderr: %s", r.Code, run.ExitUsage, r.Stderr)
	}
	if !strings.Contains(r.Stderr, `unknown command "frobnicate"`) || !strings.Contains(r.Stderr, "--help") {
		t.Fatalf("stderr does not explain the problem: %q", r.Stderr)
	}
}

func TestBadFlagIsUsageError(t *testing.T) {
	r := runCLI(t, nil, "version", "--no-such-flag")
	if r.Code != run.ExitUsage {
		t.Fatalf("exit code = %d, want %d", r.Code, run.ExitUsage)
	}
}

func TestVersion(t *testing.T) {
	r := runCLI(t, nil, "version")
	if r.Code != 0 || !strings.HasPrefix(r.Stdout, "playbook ") {
		t.Fatalf("version: code %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
	}
	if r := runCLI(t, nil, "version", "extra"); r.Code != run.ExitUsage {
		t.Fatalf("version with an argument: code %d, want %d", r.Code, run.ExitUsage)
	}
}
