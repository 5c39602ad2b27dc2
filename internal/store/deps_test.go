package store

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// The store records the run model and nothing else: it must not drag in the engine (which owns the
// child processes), the playbook language and its scheduler, or what they need (expr, YAML). The start
// times of a step's process come from the run model's records or from internal/proc.
func TestStoreDependsOnTheRunModelOnly(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command to list the dependencies with: %v", err)
	}
	out, err := exec.Command(gobin, "list", "-deps", ".").Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			t.Fatalf("go list -deps: %v\n%s", err, exit.Stderr)
		}
		t.Fatalf("go list -deps: %v", err)
	}
	const mod = "github.com/playbookhq/playbook/"
	var bad []string
	for _, pkg := range strings.Fields(string(out)) {
		switch {
		case pkg == mod+"pkg/engine",
			pkg == mod+"pkg/playbook" || strings.HasPrefix(pkg, mod+"pkg/playbook/"),
			pkg == "github.com/expr-lang/expr" || strings.HasPrefix(pkg, "github.com/expr-lang/expr/"),
			strings.Contains(strings.ToLower(pkg), "yaml"):
			bad = append(bad, pkg)
		}
	}
	if len(bad) > 0 {
		t.Errorf("the store depends on %s; it may know the run model (pkg/run) and internal helpers only",
			strings.Join(bad, ", "))
	}
}
