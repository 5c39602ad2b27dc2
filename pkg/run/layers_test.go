package run_test

import (
	"encoding/json"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/playbookhq/playbook/"

// listed is what `go list -json` says of one package.
type listed struct {
	ImportPath string
	Imports    []string
	Deps       []string
}

// TestLayers holds the architecture the README's "Architecture" section draws: the run model is a
// leaf, the store knows the run model and nothing of the engine, the language or the scheduler, the
// scheduling core knows the language and the run model but no process, file, database or clock, the
// local driver joins the core to the engine, and the engine knows nothing of ours but internal
// helpers.
func TestLayers(t *testing.T) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to list the packages with")
	}
	cmd := exec.Command(goCmd, "list", "-json", module+"...")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	pkgs := map[string]listed{}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p listed
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs[strings.TrimPrefix(p.ImportPath, module)] = p
	}
	ours := func(deps []string) []string {
		var out []string
		for _, d := range deps {
			if strings.HasPrefix(d, module) {
				out = append(out, strings.TrimPrefix(d, module))
			}
		}
		return out
	}
	for _, rule := range []struct {
		pkg     string
		allowed []string // of our packages, what its dependencies may include
		foreign []string // prefixes of other modules it must not depend on
	}{
		{"pkg/run", nil, nil},
		{"internal/store", []string{"pkg/run", "internal/proc", "internal/mask"},
			[]string{"github.com/expr-lang/", "go.yaml.in/", "gopkg.in/yaml"}},
		{"pkg/engine", []string{"internal/proc", "internal/mask", "internal/shquote"}, nil},
		{"pkg/playbook", []string{"internal/mask"}, nil},
		{"pkg/playbook/scheduler", []string{"pkg/playbook", "pkg/run", "internal/mask", "internal/shquote"}, nil},
		{"pkg/playbook/local", []string{"pkg/playbook/scheduler", "pkg/playbook", "pkg/engine", "pkg/run",
			"internal/proc", "internal/mask", "internal/shquote"}, nil},
	} {
		p, ok := pkgs[rule.pkg]
		if !ok {
			t.Errorf("go list does not know %s", rule.pkg)
			continue
		}
		for _, d := range ours(p.Deps) {
			if !slices.Contains(rule.allowed, d) {
				t.Errorf("%s depends on %s; it may depend on %v of ours", rule.pkg, d, rule.allowed)
			}
		}
		for _, d := range p.Deps {
			for _, f := range rule.foreign {
				if strings.HasPrefix(d, f) {
					t.Errorf("%s depends on %s", rule.pkg, d)
				}
			}
		}
	}

	// The core decides; it does not act. Nothing it imports itself could start a process, touch a file,
	// open a connection, draw a random number or run code concurrently.
	for _, imp := range pkgs["pkg/playbook/scheduler"].Imports {
		switch imp {
		case "os", "os/exec", "os/signal", "io/fs", "net", "net/http", "math/rand", "math/rand/v2", "crypto/rand", "sync", "runtime":
			t.Errorf("the scheduling core imports %s", imp)
		}
	}
}
