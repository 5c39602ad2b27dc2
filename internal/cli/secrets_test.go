package cli

import (
	"errors"
	"testing"

	"github.com/playbookhq/playbook/pkg/playbook"
	"github.com/playbookhq/playbook/pkg/run"
)

// TestMaskSecretsInRunErrors: whatever error run ends with, the -p values of secret params are masked
// in its message, and its exit status is kept.
func TestMaskSecretsInRunErrors(t *testing.T) {
	pb := &playbook.Playbook{Params: []*playbook.Param{{Name: "token", Secret: true}, {Name: "env"}}}
	inner := &ExitError{Code: run.ExitUsage, Err: errors.New("bad hunter2 for prod")}
	err := maskSecrets(inner, pb, map[string]string{"token": "hunter2", "env": "prod"})
	if got := err.Error(); got != "bad *** for prod" {
		t.Errorf("message %q", got)
	}
	if exitCode(err) != run.ExitUsage {
		t.Errorf("exit status %d, want %d", exitCode(err), run.ExitUsage)
	}
	if maskSecrets(nil, pb, nil) != nil || maskSecrets(inner, nil, nil) != error(inner) {
		t.Error("nil error or playbook changed")
	}
}
