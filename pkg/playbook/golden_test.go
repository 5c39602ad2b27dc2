package playbook

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the .golden files of TestGoldenInvalid and TestGoldenYAMLSyntax")

// corpus is the playbook corpus the tests of several packages read (internal/cli's validate tests too):
// valid/ holds playbooks that load, invalid/ playbooks that do not, each with the errors it gives in a
// .golden file. It is the repository's top-level testdata/playbooks, seen from this package.
const corpus = "../../testdata/playbooks"

// chdirRepository makes the repository's root the working directory for the rest of t, so that files
// of the corpus are named as from there (testdata/playbooks/invalid/x.yaml) in errors and golden files,
// whichever package's test loads them.
func chdirRepository(t *testing.T) {
	t.Helper()
	t.Chdir("../..")
	if _, err := os.Stat("testdata/playbooks/invalid"); err != nil {
		t.Fatalf("the repository's root is not two levels up: %v", err)
	}
}

// generatedInvalid are invalid inputs too large to keep in the repository; their expected errors are
// in testdata/playbooks/invalid/<name>.golden like the others.
func generatedInvalid() map[string][]byte {
	big := []byte("version: 1\nname: big\nsteps:\n  - id: a\n    run: echo a\n# ")
	big = append(big, []byte(strings.Repeat("x", 2<<20))...)
	// An anchor used in a place where the format allows a mapping, many times: the loader stops
	// following aliases once they reach maxAliasNodes nodes.
	var alias strings.Builder
	alias.WriteString("version: 1\nname: aliases\nsteps:\n  - id: s0\n    run: echo\n    env: &e\n")
	for i := range 300 {
		fmt.Fprintf(&alias, "      V%d: x\n", i)
	}
	for i := 1; i < 400; i++ {
		fmt.Fprintf(&alias, "  - {id: s%d, run: echo, env: *e}\n", i)
	}
	return map[string][]byte{
		"generated-too-large.yaml":    big,
		"generated-alias-budget.yaml": []byte(alias.String()),
	}
}

// TestGoldenInvalid loads every file of testdata/playbooks/invalid and compares the errors, one per line
// as file:line:col: message, with the file's .golden. Run go test -run TestGoldenInvalid -update to
// rewrite them after a deliberate change of messages, and review the diff.
func TestGoldenInvalid(t *testing.T) {
	chdirRepository(t)
	files, err := filepath.Glob("testdata/playbooks/invalid/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 40 {
		t.Fatalf("only %d invalid fixtures; the suite needs at least 40", len(files))
	}
	inputs := map[string]func() (*Playbook, error){}
	for _, f := range files {
		inputs[f] = func() (*Playbook, error) { return Load(f) }
	}
	for name, data := range generatedInvalid() {
		f := filepath.Join("testdata", "playbooks", "invalid", name)
		inputs[f] = func() (*Playbook, error) { return Parse(f, data) }
	}
	for f, load := range inputs {
		t.Run(filepath.Base(f), func(t *testing.T) {
			pb, err := load()
			if err == nil {
				t.Fatalf("loaded without errors (%d steps)", len(pb.Steps))
			}
			var list ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("error is %T, not a non-empty ErrorList: %v", err, err)
			}
			for _, e := range list {
				if e.File != f {
					t.Errorf("error names file %q, want %q as given", e.File, f)
				}
			}
			checkGolden(t, f, list.Error()+"\n", "TestGoldenInvalid")
		})
	}
}

// TestValidFixtures loads every file of testdata/playbooks/valid.
func TestValidFixtures(t *testing.T) {
	files, err := filepath.Glob(corpus + "/valid/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no valid fixtures: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			if _, err := Load(f); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestGoldenYAMLSyntax loads every file of testdata/yaml, each a classic YAML mistake (its first
// lines say which, and where yamllint reports it), and compares its one error with the file's .golden:
// the error must be where the mistake is and say what to do. -update rewrites the .golden files.
func TestGoldenYAMLSyntax(t *testing.T) {
	files, err := filepath.Glob("testdata/yaml/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 10 {
		t.Fatalf("only %d YAML mistakes; the suite needs at least 10", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			_, err := Load(f)
			var list ErrorList
			if !errors.As(err, &list) || len(list) != 1 {
				t.Fatalf("want exactly one error, got %v", err)
			}
			checkGolden(t, f, list.Error()+"\n", "TestGoldenYAMLSyntax")
		})
	}
}

// checkGolden compares the errors of playbook file f with its .golden file (-update rewrites it).
func checkGolden(t *testing.T, f, got, test string) {
	t.Helper()
	golden := strings.TrimSuffix(f, ".yaml") + ".golden"
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -run %s -update to create it)", err, test)
	}
	if got != string(want) {
		t.Errorf("errors differ from %s\n--- got\n%s--- want\n%s", golden, got, want)
	}
}
