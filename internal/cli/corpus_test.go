package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/playbookhq/playbook/pkg/run"
)

// TestValidateCorpus: `playbook validate` shows users exactly what the loader finds, for every playbook
// of the repository's corpus (testdata/playbooks, shared with pkg/playbook's tests): an invalid one
// exits 2 with its golden errors on stderr, line for line and nothing else; a valid one exits 0 and is
// listed as ok. The working directory is the repository's root, so that files are named as in the
// golden files.
func TestValidateCorpus(t *testing.T) {
	t.Chdir("../..")
	invalid, err := filepath.Glob("testdata/playbooks/invalid/*.yaml")
	if err != nil || len(invalid) < 40 {
		t.Fatalf("only %d invalid playbooks in testdata/playbooks/invalid (%v)", len(invalid), err)
	}
	for _, f := range invalid {
		t.Run(filepath.Base(f), func(t *testing.T) {
			want, err := os.ReadFile(strings.TrimSuffix(f, ".yaml") + ".golden")
			if err != nil {
				t.Fatal(err)
			}
			r := runCLI(t, nil, "validate", f)
			if r.Code != run.ExitUsage || r.Stdout != "" || r.Stderr != string(want) {
				t.Errorf("exit %d, stdout %q\n--- stderr\n%s--- want (exit %d)\n%s", r.Code, r.Stdout, r.Stderr, run.ExitUsage, want)
			}
		})
	}
	valid, err := filepath.Glob("testdata/playbooks/valid/*.yaml")
	if err != nil || len(valid) == 0 {
		t.Fatalf("no valid playbooks in testdata/playbooks/valid (%v)", err)
	}
	for _, f := range valid {
		t.Run(filepath.Base(f), func(t *testing.T) {
			r := runCLI(t, nil, "validate", f)
			if r.Code != 0 || !strings.HasPrefix(r.Stdout, f+": ok (") {
				t.Errorf("exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
			}
		})
	}
}
