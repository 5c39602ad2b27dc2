package playbook

import (
	"fmt"
	"strings"
)

// Select says which steps a run of part of the playbook skips (`--only`, `--skip`): with only, every
// step that is neither in only nor needed by one in it, directly or through other steps; with skip,
// the steps in skip, even when a step in only needs them (their dependents then follow the usual
// rules for a skipped need). The result maps each step it skips to why, in words for a dry run.
// Both empty: nil, nothing is skipped. An id that is no step of the playbook is an error naming it
// (and the nearest step id), before anything runs.
func (p *Playbook) Select(only, skip []string) (map[string]string, error) {
	if len(only) == 0 && len(skip) == 0 {
		return nil, nil
	}
	ids := make([]string, len(p.Steps))
	for i, s := range p.Steps {
		ids[i] = s.ID
	}
	for _, list := range []struct {
		flag string
		ids  []string
	}{{"--only", only}, {"--skip", skip}} {
		for _, id := range list.ids {
			if p.byID[id] == nil {
				return nil, fmt.Errorf("%s %s: playbook %q has no step %q%s", list.flag, id, p.Name, id,
					orList(id, ids, "its steps are"))
			}
		}
	}
	out := map[string]string{}
	if len(only) > 0 {
		wanted := map[string]bool{}
		var want func(id string)
		want = func(id string) {
			if wanted[id] {
				return
			}
			wanted[id] = true
			for _, n := range p.byID[id].Needs {
				want(n)
			}
		}
		for _, id := range only {
			want(id)
		}
		why := "not needed by --only " + strings.Join(only, ",")
		for _, s := range p.Steps {
			if !wanted[s.ID] {
				out[s.ID] = why
			}
		}
	}
	for _, id := range skip {
		out[id] = "--skip " + id
	}
	return out, nil
}
