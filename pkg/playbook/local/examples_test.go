package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/playbookhq/playbook/pkg/playbook"
	"github.com/playbookhq/playbook/pkg/run"
)

// TestExamplesRun runs every example of examples/playbooks through the scheduler, with its defaults and
// with the params that take its other paths (a failed deploy rolls back, a failed reload restores, a
// certificate far from expiry is left alone). It proves the examples' shell snippets work; the
// examples also run through the binary in cmd/playbook's examples.txtar.
func TestExamplesRun(t *testing.T) {
	if testing.Short() {
		t.Skip("runs shell commands")
	}
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not found")
	}
	cases := []struct {
		file   string
		params map[string]string
		want   map[string]run.Status // step id -> status; steps not listed must have succeeded
		run    run.Status
	}{
		{file: "hello.yaml", run: run.StatusSucceeded},
		{file: "hello.yaml", params: map[string]string{"name": "Ada"}, run: run.StatusSucceeded},
		{file: "release.yaml", want: map[string]run.Status{"rollback": run.StatusSkipped}, run: run.StatusSucceeded},
		{file: "release.yaml", params: map[string]string{"fail_deploy": "true"},
			want: map[string]run.Status{"deploy": run.StatusFailed}, run: run.StatusFailed},
		{file: "backup.yaml", run: run.StatusSucceeded},
		{file: "diagnostics.yaml", run: run.StatusSucceeded},
		{file: "cert-rotation.yaml", want: map[string]run.Status{"restore": run.StatusSkipped}, run: run.StatusSucceeded},
		{file: "cert-rotation.yaml", params: map[string]string{"fail_reload": "true"},
			want: map[string]run.Status{"reload": run.StatusFailed}, run: run.StatusFailed},
		{file: "cert-rotation.yaml", params: map[string]string{"renew_below_days": "10"},
			want: map[string]run.Status{"issue": run.StatusSkipped, "verify": run.StatusSkipped, "install": run.StatusSkipped,
				"reload": run.StatusSkipped, "restore": run.StatusSkipped}, run: run.StatusSucceeded},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s %v", c.file, c.params), func(t *testing.T) {
			t.Parallel()
			pb, err := playbook.Load(filepath.Join("../../../examples/playbooks", c.file))
			if err != nil {
				t.Fatal(err)
			}
			params, err := pb.ResolveParams(c.params)
			if err != nil {
				t.Fatal(err)
			}
			var log strings.Builder // the steps' output, for the failure message
			sum, err := Run(context.Background(), pb, Options{Params: params, Observer: run.ObserverFunc(func(e run.Event) {
				if e.Type == run.EventStepOutput {
					fmt.Fprintf(&log, "[%s] %s\n", e.StepID, e.Line)
				}
			})})
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range sum.Steps {
				want := c.want[s.StepID]
				if want == "" {
					want = run.StatusSucceeded
				}
				if s.Status != want {
					t.Errorf("step %s: %s, want %s (%s)", s.StepID, s.Status, want, s.Error)
				}
				if dir := s.Outputs["dir"]; s.StepID == "workspace" && dir != "" {
					if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
						t.Errorf("workspace %s was not cleaned up (%v)", dir, err)
					}
				}
			}
			if sum.Run.Status != c.run {
				t.Errorf("run %s, want %s", sum.Run.Status, c.run)
			}
			if t.Failed() || testing.Verbose() {
				t.Log(log.String())
			}
		})
	}
}
