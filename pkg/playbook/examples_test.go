package playbook_test

import (
	"path/filepath"
	"testing"

	"github.com/playbookhq/playbook/pkg/playbook"
)

const examplesDir = "../../examples/playbooks"

// TestExamplesValidate loads every example: they are part of the documentation, so they must stay valid,
// and they must not produce warnings (they show the safe way to use params in commands).
func TestExamplesValidate(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(examplesDir, "*.yaml"))
	if err != nil || len(files) < 5 {
		t.Fatalf("expected at least hello.yaml and four playbooks in %s, found %d (%v)", examplesDir, len(files), err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			pb, err := playbook.Load(f)
			if err != nil {
				t.Fatal(err)
			}
			if len(pb.Warnings) > 0 {
				t.Errorf("warnings: %v", pb.Warnings)
			}
			if _, err := pb.ResolveParams(nil); err != nil {
				t.Errorf("does not run with its defaults: %v", err)
			}
		})
	}
}
