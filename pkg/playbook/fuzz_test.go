package playbook

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzParse: no input makes the loader panic or hang, every problem is an *Error in the file, and a
// playbook that loads is consistent (Order holds every step once, after its needs).
//
//	go test -run '^$' -fuzz FuzzParse -fuzztime 1m ./pkg/playbook/
func FuzzParse(f *testing.F) {
	for _, dir := range []string{corpus + "/valid", corpus + "/invalid", "../../examples/playbooks", "testdata/yaml"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
		for _, file := range files {
			if data, err := os.ReadFile(file); err == nil {
				f.Add(data)
			}
		}
	}
	f.Add([]byte("version: 1\nname: x\nsteps:\n  - {id: a, run: 'echo ${{ params.x }}', if: 'steps.a.status'}\n"))
	f.Add([]byte("a: &a [*a]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		start := time.Now()
		pb, err := Parse("fuzz.yaml", data)
		if d := time.Since(start); d > hangGuard { // a hang guard, not a speed target
			t.Fatalf("took %s", d)
		}
		if err != nil {
			var list ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("error is not a non-empty ErrorList: %v", err)
			}
			for _, e := range list {
				if e.File != "fuzz.yaml" || e.Msg == "" || e.Line < 0 || e.Col < 0 {
					t.Fatalf("bad error %#v", e)
				}
			}
			if pb != nil {
				t.Fatal("both a playbook and an error")
			}
			return
		}
		if len(pb.Order) != len(pb.Steps) {
			t.Fatalf("Order has %d steps, Steps %d", len(pb.Order), len(pb.Steps))
		}
		done := map[string]bool{}
		for _, s := range pb.Order {
			for _, n := range s.Needs {
				if !done[n] {
					t.Fatalf("%s before its need %s", s.ID, n)
				}
			}
			done[s.ID] = true
			if s.If == nil {
				t.Fatalf("step %s has a nil If", s.ID)
			}
		}
	})
}
