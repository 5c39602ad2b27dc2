package engine

import (
	"context"
	"reflect"
	"sort"
	"strings"
	"testing"
)

func TestBuildEnv(t *testing.T) {
	got := buildEnv([]string{"A=1", "B=2", "PATH=/bin", "C=3"}, map[string]string{"B": "env", "D": "new"}, []string{"C=extra", "B=extra"})
	sort.Strings(got)
	want := []string{"A=1", "B=extra", "C=extra", "D=new", "PATH=/bin"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("buildEnv = %q, want %q", got, want)
	}
	if got := buildEnv([]string{"A=1"}, nil, nil); !reflect.DeepEqual(got, []string{"A=1"}) {
		t.Errorf("nothing to add: %q", got)
	}
	if got := buildEnv(nil, nil, nil); got == nil || len(got) != 0 {
		t.Errorf("a clean, empty environment must be empty and not nil (nil would mean 'inherit'): %#v", got)
	}
}

// A request's variable replaces the inherited one for every kind of program: a Go program reads the
// first of two duplicates and a shell the last, so the child must see each key once.
func TestEnvOverridesInheritedForEveryReader(t *testing.T) {
	t.Setenv("PLAYBOOK_ENGINE_TEST_VAR", "inherited")
	e := newEngine(t, Config{})
	req := helperReq("env", "PLAYBOOK_ENGINE_TEST_VAR")
	req.Env["PLAYBOOK_ENGINE_TEST_VAR"] = "from request"
	r, err := e.Run(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(r.Stdout)); got != "PLAYBOOK_ENGINE_TEST_VAR=from request true" {
		t.Errorf("a Go child sees %q", got)
	}
	r, err = e.Run(context.Background(), Request{Command: Shell{Command: `echo "$PLAYBOOK_ENGINE_TEST_VAR"; env | grep -c '^PLAYBOOK_ENGINE_TEST_VAR='`, Shell: "/bin/sh"},
		Env: map[string]string{"PLAYBOOK_ENGINE_TEST_VAR": "from request"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(r.Stdout); got != "from request\n1\n" {
		t.Errorf("a shell child sees %q, want the request's value, once", got)
	}
}
