package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/playbookhq/playbook/pkg/playbook"
	"github.com/playbookhq/playbook/pkg/run"
)

func TestSchemaCommand(t *testing.T) {
	r := runCLI(t, nil, "schema")
	if r.Code != run.ExitSucceeded || r.Stderr != "" {
		t.Fatalf("code %d, stderr %q", r.Code, r.Stderr)
	}
	if !bytes.Equal([]byte(r.Stdout), playbook.Schema()) {
		t.Errorf("output differs from playbook.Schema()")
	}
	var s map[string]any
	if err := json.Unmarshal([]byte(r.Stdout), &s); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if s["$schema"] != "http://json-schema.org/draft-07/schema#" {
		t.Errorf("$schema = %v", s["$schema"])
	}
	if r := runCLI(t, nil, "schema", "extra"); r.Code != run.ExitUsage || !strings.Contains(r.Stderr, "takes no arguments") {
		t.Errorf("with an argument: code %d, stderr %q", r.Code, r.Stderr)
	}
}
