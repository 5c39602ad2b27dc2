package cli

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestRunTemporalParamsOffTheCommandLine: playbook hands run --temporal to playbook-temporal with the
// command line as typed, so values from the environment or a params file never reach its argv; the
// process carrying the run reads them there and gives them to the workflow in memory.
func TestRunTemporalParamsOffTheCommandLine(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "p.yaml")
	if err := os.WriteFile(file, []byte("version: 1\nname: p\nparams:\n  n: {type: int}\n  token: {secret: true, required: true}\nsteps:\n  - id: a\n    run: echo hi\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	params := filepath.Join(dir, "params.env")
	if err := os.WriteFile(params, []byte("token=FILESECRET\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"PLAYBOOK_PARAM_N=4", "PLAYBOOK_PARAM_TOKEN=ENVSECRET"}
	args := []string{"run", "--temporal", "h:1", "--db", filepath.Join(dir, "pb.db"), "--params-file", params, file}

	var got []string
	exec := func(name string, argv []string) error {
		got = append([]string{name}, argv...)
		return errors.New("exec failed")
	}
	runRemoteCLI(t, nil, exec, env, args...)
	if want := append([]string{PluginName}, args...); !slices.Equal(got, want) {
		t.Errorf("handed off with %q, want %q", got, want)
	}
	if s := strings.Join(got, " "); strings.Contains(s, "SECRET") || strings.Contains(s, "n=4") {
		t.Errorf("a value reached the argv: %q", got)
	}

	rem := &fakeRemote{}
	r := runRemoteCLI(t, rem, nil, env, args...)
	if r.Code != 0 || len(rem.runs) != 1 {
		t.Fatalf("exit %d, %d remote runs:\n%s%s", r.Code, len(rem.runs), r.Stdout, r.Stderr)
	}
	if p := rem.runs[0].Params; p["n"] != "4" || p["token"] != "FILESECRET" {
		t.Errorf("the workflow got params %q, want n from the environment and token from the file", p)
	}
}

func TestParseParams(t *testing.T) {
	for _, c := range []struct {
		text string
		want string // name=value;... or the error's text
	}{
		{"a=1\r\nb='two words'\n\n  # comment\nc=\"x\"y\"\nd=#not a comment\ne=\n", `a=1;b=two words;c=x"y;d=#not a comment;e=`},
		{"# only comments\n\n", ""},
		{"a: 1.10\nb: 'x: y'\nc: true\n", "a=1.10;b=x: y;c=true"},
		{"a: [1, 2]\n", `f:1:4: param "a": want one value`},
		{"a: ~\n", `f:1:4: param "a": want one value`},
		{"- a\n", "f:1:1: want a mapping"},
		{"a=1\nb: 2\n", "f:2: want NAME=value"},
		{"a: [\n", "f is neither NAME=value lines nor YAML"},
	} {
		entries, err := parseParams("f", []byte(c.text))
		var got []string
		for _, e := range entries {
			got = append(got, e.name+"="+e.value)
		}
		s := strings.Join(got, ";")
		if err != nil {
			s = err.Error()
		}
		if !strings.Contains(s, c.want) || (c.want == "" && s != "") {
			t.Errorf("%q: got %q, want %q", c.text, s, c.want)
		}
	}
}
