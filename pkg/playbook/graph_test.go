package playbook

import (
	"fmt"
	"strings"
	"testing"
)

func ids(steps []*Step) string {
	var s []string
	for _, st := range steps {
		s = append(s, st.ID)
	}
	return strings.Join(s, " ")
}

func levels(pb *Playbook) string {
	var s []string
	for _, l := range pb.Levels {
		s = append(s, ids(l))
	}
	return strings.Join(s, " | ")
}

func TestOrderAndLevels(t *testing.T) {
	cases := []struct {
		name, steps, order, levels string
	}{
		{"file order kept when valid",
			"  - {id: a, run: x}\n  - {id: b, needs: [a], run: x}\n  - {id: c, run: x}\n",
			"a b c", "a c | b"},
		{"needs further down",
			"  - {id: deploy, needs: [test], run: x}\n  - {id: test, needs: [build], run: x}\n  - {id: build, run: x}\n",
			"build test deploy", "build | test | deploy"},
		{"diamond",
			"  - {id: a, run: x}\n  - {id: b, needs: a, run: x}\n  - {id: c, needs: a, run: x}\n  - {id: d, needs: [c, b], run: x}\n",
			"a b c d", "a | b c | d"},
		{"level is one after the deepest need",
			"  - {id: a, run: x}\n  - {id: b, needs: a, run: x}\n  - {id: c, needs: [a, b], run: x}\n  - {id: z, run: x}\n",
			"a b c z", "a z | b | c"},
		{"ties keep file order",
			"  - {id: z, run: x}\n  - {id: y, run: x}\n  - {id: x, needs: [y, z], run: x}\n  - {id: w, run: x}\n",
			"z y x w", "z y w | x"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pb := mustParse(t, "version: 1\nname: g\nsteps:\n"+c.steps)
			if got := ids(pb.Order); got != c.order {
				t.Errorf("Order = %s, want %s", got, c.order)
			}
			if got := levels(pb); got != c.levels {
				t.Errorf("Levels = %s, want %s", got, c.levels)
			}
			// Every step comes after its needs.
			pos := map[string]int{}
			for i, s := range pb.Order {
				pos[s.ID] = i
				for _, n := range s.Needs {
					if _, ok := pos[n]; !ok {
						t.Errorf("%s comes before its need %s", s.ID, n)
					}
				}
			}
		})
	}
}

func TestGraphErrors(t *testing.T) {
	cases := []struct {
		name, steps string
		line, col   int
		msg         string
	}{
		{"cycle names its path",
			"  - {id: alpha, needs: [gamma], run: x}\n  - {id: beta, needs: [alpha], run: x}\n  - {id: gamma, needs: [beta], run: x}\n",
			4, 25, "dependency cycle: alpha -> gamma -> beta -> alpha"},
		{"two-step cycle",
			"  - {id: a, run: x}\n  - {id: b, needs: [a, c], run: x}\n  - {id: c, needs: b, run: x}\n",
			5, 24, "dependency cycle: b -> c -> b"},
		{"self-dependency",
			"  - {id: a, needs: [a], run: x}\n", 4, 21, `step "a" needs itself`},
		{"unknown need with suggestion",
			"  - {id: build, run: x}\n  - {id: test, needs: [biuld], run: x}\n", 5, 24, `step "test" needs "biuld", which is not a step; did you mean "build"?`},
		{"duplicate ids name both lines",
			"  - {id: a, run: x}\n  - {id: b, run: x}\n  - {id: a, run: y}\n", 6, 10, `duplicate step id "a": also used by the step at line 4`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantError(t, "version: 1\nname: g\nsteps:\n"+c.steps, c.line, c.col, c.msg)
		})
	}
	// Several cycles are each reported once.
	list := parseErr(t, "version: 1\nname: g\nsteps:\n  - {id: a, needs: b, run: x}\n  - {id: b, needs: a, run: x}\n  - {id: c, needs: d, run: x}\n  - {id: d, needs: c, run: x}\n  - {id: e, needs: [a, c], run: x}\n")
	if n := strings.Count(list.Error(), "dependency cycle"); n != 2 {
		t.Errorf("%d cycles reported, want 2:\n%v", n, list)
	}
}

// TestLongChain: a 10,000-step chain (deep graph) and a 10,000-step cycle are handled in linear time
// without deep recursion.
func TestLongChain(t *testing.T) {
	var b strings.Builder
	b.WriteString("version: 1\nname: chain\nsteps:\n")
	for i := range 10000 {
		if i == 0 {
			b.WriteString("- {id: s0, run: x}\n")
			continue
		}
		fmt.Fprintf(&b, "- {id: s%d, needs: s%d, run: x, if: steps.s0.exit_code == 0}\n", i, i-1)
	}
	pb := mustParse(t, b.String())
	if len(pb.Levels) != 10000 || pb.Order[9999].ID != "s9999" {
		t.Errorf("%d levels", len(pb.Levels))
	}
	cycle := strings.Replace(b.String(), "- {id: s0, run: x}", "- {id: s0, needs: s9999, run: x}", 1)
	list := parseErr(t, cycle)
	if !strings.Contains(list.Error(), "dependency cycle: s0 -> s9999 -> s9998") || !strings.Contains(list.Error(), "more)") {
		t.Errorf("cycle: %.300s", list.Error())
	}
	// Linear time is BenchmarkLongChain's to show: a time limit here failed on a loaded machine with
	// the race detector, and a hang meets go test's own timeout.
}
