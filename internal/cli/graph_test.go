package cli

import (
	"strings"
	"testing"

	"github.com/playbookhq/playbook/pkg/run"
)

const graphPlaybook = `version: 1
name: release
steps:
  - id: fetch
    run: git fetch
  - id: compile
    name: Compile "it"
    needs: [fetch]
    run: make
  - id: end
    needs: [compile]
    run: echo end
  - id: notify-team
    needs: [compile, end]
    if: failure() || params.x == "#1"
    run: echo notify
params:
  x: {default: a}
`

func TestGraphMermaid(t *testing.T) {
	p := writePlaybook(t, "release.yaml", graphPlaybook)
	r := runCLI(t, nil, "graph", p)
	want := `flowchart TD
    fetch["fetch"]
    compile["compile: Compile #quot;it#quot;"]
    n_3["end"]
    notify-team{{"notify-team<br/>if: failure() || params.x == #quot;#35;1#quot;"}}
    fetch --> compile
    compile --> n_3
    compile --> notify-team
    n_3 --> notify-team
    classDef conditional stroke-dasharray: 5 5
    class notify-team conditional
`
	if r.Code != run.ExitSucceeded || r.Stdout != want {
		t.Errorf("code %d, stderr %q, stdout:\n%s\nwant:\n%s", r.Code, r.Stderr, r.Stdout, want)
	}
	if r2 := runCLI(t, nil, "graph", "--format", "mermaid", p); r2.Stdout != r.Stdout {
		t.Errorf("--format mermaid differs from the default")
	}
}

func TestGraphDOT(t *testing.T) {
	p := writePlaybook(t, "release.yaml", graphPlaybook)
	r := runCLI(t, nil, "graph", "--format", "dot", p)
	want := `digraph "release" {
    rankdir=TB;
    node [shape=box, style=rounded];
    "fetch" [label="fetch"];
    "compile" [label="compile: Compile \"it\""];
    "end" [label="end"];
    "notify-team" [label="notify-team\nif: failure() || params.x == \"#1\"", style="rounded,dashed"];
    "fetch" -> "compile";
    "compile" -> "end";
    "compile" -> "notify-team";
    "end" -> "notify-team";
}
`
	if r.Code != run.ExitSucceeded || r.Stdout != want {
		t.Errorf("code %d, stderr %q, stdout:\n%s\nwant:\n%s", r.Code, r.Stderr, r.Stdout, want)
	}
}

func TestGraphErrors(t *testing.T) {
	p := writePlaybook(t, "cycle.yaml", "version: 1\nname: c\nsteps:\n  - {id: a, needs: b, run: x}\n  - {id: b, needs: a, run: x}\n")
	r := runCLI(t, nil, "graph", p)
	if r.Code != run.ExitUsage || r.Stdout != "" || r.Stderr != p+":4:20: dependency cycle: a -> b -> a (each step needs the next); remove one of these needs\n" {
		t.Errorf("cycle: code %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
	}
	good := writePlaybook(t, "good.yaml", validPlaybook)
	r = runCLI(t, nil, "graph", "--format", "svg", good)
	if r.Code != run.ExitUsage || !strings.Contains(r.Stderr, `--format must be mermaid or dot, not "svg"`) {
		t.Errorf("bad format: code %d, stderr %q", r.Code, r.Stderr)
	}
	for _, args := range [][]string{{"graph"}, {"graph", good, good}} {
		if r := runCLI(t, nil, args...); r.Code != run.ExitUsage || !strings.Contains(r.Stderr, "takes one playbook file") {
			t.Errorf("%v: code %d, stderr %q", args, r.Code, r.Stderr)
		}
	}
}

func TestGraphExamples(t *testing.T) {
	r := runCLI(t, nil, "graph", "../../examples/playbooks/release.yaml")
	if r.Code != run.ExitSucceeded {
		t.Fatalf("code %d: %s", r.Code, r.Stderr)
	}
	for _, want := range []string{"workspace --> build", "build --> unit-tests", "deploy --> rollback", "class rollback,notify,cleanup conditional"} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("missing %q in:\n%s", want, r.Stdout)
		}
	}
}

func TestMermaidIDs(t *testing.T) {
	for id, usable := range map[string]bool{
		"fetch": true, "unit-tests": true, "a_b-c": true, "end": false, "End": false, "send": true,
		"end-game": false, "the_end": false, "a--b": false, "-a": false, "a-": false, "1st": false,
		"n_1": false, "graph": false, "x": true, "o": true,
	} {
		if got := mermaidUsable(id); got != usable {
			t.Errorf("mermaidUsable(%q) = %v, want %v", id, got, usable)
		}
	}
}
