package playbook

import (
	"reflect"
	"strings"
	"testing"
)

// TestSelect: --only keeps the named steps and everything they need, transitively; --skip names the
// steps it skips, even a need of an --only step; unknown ids are errors naming the nearest step.
func TestSelect(t *testing.T) {
	pb := mustParse(t, `version: 1
name: sel
steps:
  - {id: a, run: "true"}
  - {id: b, needs: [a], run: "true"}
  - {id: c, needs: [b], run: "true"}
  - {id: d, run: "true"}
  - {id: e, needs: [c, d], run: "true"}
`)
	keys := func(m map[string]string) []string {
		var out []string
		for _, s := range pb.Steps {
			if _, ok := m[s.ID]; ok {
				out = append(out, s.ID)
			}
		}
		return out
	}
	for _, tc := range []struct {
		only, skip []string
		want       []string
	}{
		{nil, nil, nil},
		{[]string{"c"}, nil, []string{"d", "e"}},
		{[]string{"c", "d"}, nil, []string{"e"}},
		{[]string{"e"}, nil, nil},
		{nil, []string{"b"}, []string{"b"}},
		{[]string{"c"}, []string{"a"}, []string{"a", "d", "e"}},
	} {
		got, err := pb.Select(tc.only, tc.skip)
		if err != nil {
			t.Fatalf("only %v skip %v: %v", tc.only, tc.skip, err)
		}
		if k := keys(got); !reflect.DeepEqual(k, tc.want) {
			t.Errorf("only %v skip %v: skips %v, want %v", tc.only, tc.skip, k, tc.want)
		}
	}
	if got, _ := pb.Select([]string{"c"}, []string{"a"}); got["d"] != "not needed by --only c" || got["a"] != "--skip a" {
		t.Errorf("why: %q", got)
	}
	for _, tc := range []struct {
		only, skip []string
		want       string
	}{
		{[]string{"bb"}, nil, `--only bb: playbook "sel" has no step "bb"; did you mean "b"?`},
		{nil, []string{"zzz"}, `--skip zzz: playbook "sel" has no step "zzz"; its steps are a, b, c, d, e`},
	} {
		_, err := pb.Select(tc.only, tc.skip)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("only %v skip %v: error %v, want %q", tc.only, tc.skip, err, tc.want)
		}
	}
}
