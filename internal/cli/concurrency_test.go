package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/playbookhq/playbook/pkg/run"
)

// TestRunTemporalRefusesConcurrency: a distributed run does not hold concurrency groups, so a playbook
// with one is refused with --temporal (exit 2) before anything is sent or recorded; --dry-run, which
// contacts nobody, still shows the plan.
func TestRunTemporalRefusesConcurrency(t *testing.T) {
	file := filepath.Join(t.TempDir(), "p.yaml")
	src := "version: 1\nname: p\nparams:\n  env: {default: prod}\nconcurrency: \"deploy-${{ params.env }}\"\nsteps:\n  - id: a\n    run: echo hi\n"
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	rem := &fakeRemote{}
	db := filepath.Join(t.TempDir(), "pb.db")
	r := runRemoteCLI(t, rem, nil, nil, "run", "--temporal", "h:1", "--db", db, file)
	if r.Code != run.ExitUsage || !strings.Contains(r.Stderr, `concurrency (group "deploy-prod") is not supported with --temporal yet`) {
		t.Errorf("exit %d:\n%s", r.Code, r.Stderr)
	}
	if len(rem.runs) != 0 {
		t.Errorf("the run was sent")
	}
	if _, err := os.Stat(db); err == nil {
		t.Errorf("the database was created")
	}
	r = runRemoteCLI(t, rem, nil, nil, "run", "--temporal", "h:1", "--db", db, "--dry-run", file)
	if r.Code != 0 {
		t.Errorf("--dry-run: exit %d:\n%s", r.Code, r.Stderr)
	}
}
