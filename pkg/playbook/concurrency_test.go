package playbook

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const concurrencyHead = `version: 1
name: c
params:
  env: {enum: [staging, prod], default: staging}
  token: {secret: true, default: x}
  free: {default: "a\nb"}
`

// The concurrency key: a group name or {group, wait}; the group is a template over params that must
// not read a secret; validate reports mistakes at their position, and the schema knows the key.
func TestConcurrencyKey(t *testing.T) {
	ok := []struct {
		key, group string
		wait       bool
	}{
		{`concurrency: deploy`, "deploy", true},
		{`concurrency: "deploy-${{ params.env }}"`, "deploy-prod", true},
		{`concurrency: {group: "deploy-${{ params.env }}", wait: false}`, "deploy-prod", false},
		{`concurrency: {group: backup, wait: true}`, "backup", true},
	}
	schema := compileSchema(t)
	for _, c := range ok {
		src := concurrencyHead + c.key + "\nsteps:\n  - id: a\n    run: echo hi\n"
		pb, err := Parse("c.yaml", []byte(src))
		if err != nil {
			t.Errorf("%s: %v", c.key, err)
			continue
		}
		g, err := pb.GroupName(Params{"env": "prod"})
		if err != nil || g != c.group || pb.Concurrency.Wait != c.wait {
			t.Errorf("%s: group %q, %v, wait %v; want %q, wait %v", c.key, g, err, pb.Concurrency.Wait, c.group, c.wait)
		}
		path := filepath.Join(t.TempDir(), "c.yaml")
		if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := schema.Validate(yamlAsJSON(t, path)); err != nil {
			t.Errorf("%s: the schema refuses it: %v", c.key, err)
		}
	}
	pb, err := Parse("c.yaml", []byte(concurrencyHead+"steps:\n  - id: a\n    run: echo hi\n"))
	if err != nil {
		t.Fatal(err)
	}
	if g, err := pb.GroupName(Params{}); pb.Concurrency != nil || g != "" || err != nil {
		t.Errorf("no concurrency key: %+v %q %v", pb.Concurrency, g, err)
	}

	bad := map[string]string{
		`concurrency: ""`:                          "7:14: concurrency must not be empty",
		`concurrency: [a]`:                         "7:14: concurrency must be a group name or a mapping {group: NAME, wait: true|false}, not a list",
		`concurrency: {wait: true}`:                `7:14: missing required key "group" in concurrency`,
		`concurrency: {group: x, wiat: true}`:      `7:25: unknown key "wiat" in concurrency; did you mean "wait"?`,
		`concurrency: {group: x, wait: 1}`:         "7:31: wait in concurrency must be true or false",
		`concurrency: "d-${{ params.token }}"`:     `7:28: concurrency group reads secret param "token"`,
		`concurrency: "d-${{ steps.a.status }}"`:   "7:21: concurrency group: only params can be read here",
		`concurrency: "${{ params.nope }}"`:        `unknown param "nope"`,
		"concurrency: \"a\\u0007b\"":               "holds a control character",
		`concurrency: ` + strings.Repeat("g", 201): "must be 1 to 200 characters",
	}
	for key, want := range bad {
		_, err := Parse("c.yaml", []byte(concurrencyHead+key+"\nsteps:\n  - id: a\n    run: echo hi\n"))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error with %q", key, err, want)
		}
	}

	// A rendered group is checked too: a param may give it a control character.
	pb, err = Parse("c.yaml", []byte(concurrencyHead+"concurrency: \"x-${{ params.free }}\"\nsteps:\n  - id: a\n    run: echo hi\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pb.GroupName(Params{"free": "a\nb"}); err == nil || !strings.Contains(err.Error(), "control character") {
		t.Errorf("group with a newline: %v", err)
	}
}
