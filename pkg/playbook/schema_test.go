package playbook

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"
)

// compileSchema compiles Schema() with a real JSON Schema implementation (test-only dependency), which
// also checks it against the draft-07 meta-schema.
func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(Schema()))
	if err != nil {
		t.Fatalf("schema is not JSON: %v", err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("playbook.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("playbook.schema.json")
	if err != nil {
		t.Fatalf("schema does not compile: %v", err)
	}
	return s
}

// yamlAsJSON reads a YAML file the way an editor's YAML language server does: as JSON data.
func yamlAsJSON(t *testing.T, path string) any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	j, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	out, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSchemaAcceptsValidFiles: every example and every valid fixture validates against the schema.
func TestSchemaAcceptsValidFiles(t *testing.T) {
	s := compileSchema(t)
	var files []string
	for _, g := range []string{corpus + "/valid/*.yaml", "../../examples/playbooks/*.yaml"} {
		m, _ := filepath.Glob(g)
		files = append(files, m...)
	}
	if len(files) < 10 {
		t.Fatalf("only %d files", len(files))
	}
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			if err := s.Validate(yamlAsJSON(t, f)); err != nil {
				t.Errorf("%v", err)
			}
		})
	}
}

// TestSchemaRejectsInvalidFiles: files with an unknown key (at every level), or with structural errors
// the schema can express, fail it as they fail the loader.
func TestSchemaRejectsInvalidFiles(t *testing.T) {
	s := compileSchema(t)
	for _, name := range []string{
		"unknown-key-top", "unknown-key-step", "unknown-key-retry", "unknown-key-param", "unknown-key-aws",
		"unknown-key-defaults", "missing-required", "bad-version", "version-string", "bad-names", "bool-yes",
		"bad-durations", "unknown-signal", "bad-param-type", "step-kinds", "key-without-kind", "bad-enum",
		"wrong-types", "quoted-numbers", "bad-retry", "env-values", "missing-step-id", "merge-key",
	} {
		t.Run(name, func(t *testing.T) {
			f := filepath.Join(corpus, "invalid", name+".yaml")
			if _, err := Load(f); err == nil {
				t.Fatalf("%s loads", f)
			}
			if err := s.Validate(yamlAsJSON(t, f)); err == nil {
				t.Errorf("%s validates against the schema", f)
			}
		})
	}
}

// TestSchemaShape: draft-07, closed objects, descriptions from the doc tags.
func TestSchemaShape(t *testing.T) {
	var s map[string]any
	if err := json.Unmarshal(Schema(), &s); err != nil {
		t.Fatal(err)
	}
	if s["$schema"] != "http://json-schema.org/draft-07/schema#" || s["additionalProperties"] != false {
		t.Errorf("top: %v %v", s["$schema"], s["additionalProperties"])
	}
	props := s["properties"].(map[string]any)
	step := props["steps"].(map[string]any)["items"].(map[string]any)
	if step["additionalProperties"] != false || len(step["oneOf"].([]any)) != 4 {
		t.Errorf("step schema: %v", step)
	}
	var keys []string
	for k := range step["properties"].(map[string]any) {
		keys = append(keys, k)
	}
	if len(keys) != 18 {
		t.Errorf("step has %d keys: %v", len(keys), keys)
	}
	if d, _ := props["fail_fast"].(map[string]any)["description"].(string); !strings.Contains(d, "Default true") {
		t.Errorf("fail_fast description: %q", d)
	}
	if !bytes.HasSuffix(Schema(), []byte("}\n")) {
		t.Errorf("schema does not end with a newline")
	}
}
