package local

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/playbookhq/playbook/pkg/playbook"
	"github.com/playbookhq/playbook/pkg/run"
)

// loadIn parses a playbook written for a test in dir (where its script files are).
func loadIn(t *testing.T, dir, src string) *playbook.Playbook {
	t.Helper()
	pb, err := playbook.Parse(filepath.Join(dir, "test.yaml"), []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return pb
}

var testKey = []byte("0123456789abcdef0123456789abcdef")

// runOnce runs pb with the given params (name=value) as a retry of prev (nil: a first run) and
// returns its steps by id.
func runOnce(t *testing.T, pb *playbook.Playbook, prev map[string]*run.StepRecord, params ...string) map[string]*run.StepRecord {
	t.Helper()
	values := map[string]string{}
	for _, p := range params {
		k, v, _ := strings.Cut(p, "=")
		values[k] = v
	}
	resolved, err := pb.ResolveParams(values)
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Params: resolved, FingerprintKey: testKey, Recorder: &fakeRecorder{}}
	if prev != nil {
		opts.RetryOf, opts.Reuse = "first", prev
	}
	sum, err := Run(context.Background(), pb, opts)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*run.StepRecord{}
	for _, s := range sum.Steps {
		out[s.StepID] = s
	}
	return out
}

// verdicts lists each step as "id status reason/retry_reason:detail", in the order given.
func verdicts(steps map[string]*run.StepRecord, ids ...string) string {
	var b strings.Builder
	for _, id := range ids {
		s := steps[id]
		b.WriteString(id + " " + string(s.Status) + " " + s.Reason + "/" + s.RetryReason)
		if s.RetryDetail != "" {
			b.WriteString(":" + s.RetryDetail)
		}
		b.WriteString("\n")
	}
	return b.String()
}

func checkVerdicts(t *testing.T, got map[string]*run.StepRecord, want string, ids ...string) {
	t.Helper()
	if g := verdicts(got, ids...); g != want {
		t.Errorf("steps:\n%s\nwant:\n%s", g, want)
	}
}

// TestRetryLockMigrateRelease: the release step (if: always()) ran in the first run and released the
// lock; the retry takes the lock again, migrates under it and releases it again. Nothing is reused.
func TestRetryLockMigrateRelease(t *testing.T) {
	dir := t.TempDir()
	pb := loadIn(t, dir, `version: 1
name: lock
fail_fast: false
steps:
  - id: lock
    run: mkdir lock.d
  - id: migrate
    needs: [lock]
    run: test -d lock.d && test ! -f broken && echo migrated >> log
  - id: release
    needs: [migrate]
    if: always()
    run: rmdir lock.d
`)
	if err := os.WriteFile(filepath.Join(dir, "broken"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	first := runOnce(t, pb, nil)
	checkVerdicts(t, first, "lock succeeded /\nmigrate failed /\nrelease succeeded /\n", "lock", "migrate", "release")
	os.Remove(filepath.Join(dir, "broken"))
	second := runOnce(t, pb, first)
	checkVerdicts(t, second, "lock succeeded /undone:release\nmigrate succeeded /not_succeeded:failed\nrelease succeeded /need_not_reused:migrate\n",
		"lock", "migrate", "release")
	if _, err := os.Stat(filepath.Join(dir, "lock.d")); !os.IsNotExist(err) {
		t.Errorf("the lock is still held after the retry: %v", err)
	}
}

// TestRetryAlwaysStepAfterRerun: a cleanup step (if: always()) after a step that runs again is
// evaluated and run again, not reused.
func TestRetryAlwaysStepAfterRerun(t *testing.T) {
	dir := t.TempDir()
	pb := loadIn(t, dir, `version: 1
name: cleanup
steps:
  - id: work
    run: test ! -f broken
  - id: cleanup
    needs: [work]
    if: always()
    run: echo cleaned >> cleanups
`)
	os.WriteFile(filepath.Join(dir, "broken"), nil, 0o600)
	first := runOnce(t, pb, nil)
	os.Remove(filepath.Join(dir, "broken"))
	second := runOnce(t, pb, first)
	checkVerdicts(t, second, "work succeeded /not_succeeded:failed\ncleanup succeeded /need_not_reused:work\n", "work", "cleanup")
	b, _ := os.ReadFile(filepath.Join(dir, "cleanups"))
	if got := strings.Count(string(b), "cleaned"); got != 2 {
		t.Errorf("cleanup ran %d times, want 2", got)
	}
}

// TestRetryParamChangeRunsAgain: a build made from version 1.0.0 is not reused by a retry with 2.0.0;
// with the same version it is.
func TestRetryParamChangeRunsAgain(t *testing.T) {
	dir := t.TempDir()
	pb := loadIn(t, dir, `version: 1
name: release
params:
  version: {}
steps:
  - id: build
    run: echo "$PLAYBOOK_PARAM_VERSION" > built
  - id: test
    needs: [build]
    run: test ! -f broken
`)
	os.WriteFile(filepath.Join(dir, "broken"), nil, 0o600)
	first := runOnce(t, pb, nil, "version=1.0.0")
	if first["build"].Fingerprint == "" || len(first["build"].Fingerprint) != 64 {
		t.Fatalf("build's fingerprint = %q, want 64 hex digits", first["build"].Fingerprint)
	}
	same := runOnce(t, pb, first, "version=1.0.0")
	checkVerdicts(t, same, "build succeeded reused/reused\ntest failed /not_succeeded:failed\n", "build", "test")
	if same["build"].Fingerprint != first["build"].Fingerprint {
		t.Errorf("reused build's fingerprint %s, want %s", same["build"].Fingerprint, first["build"].Fingerprint)
	}
	os.Remove(filepath.Join(dir, "broken"))
	changed := runOnce(t, pb, first, "version=2.0.0")
	checkVerdicts(t, changed, "build succeeded /inputs_changed\ntest succeeded /not_succeeded:failed\n", "build", "test")
	if b, _ := os.ReadFile(filepath.Join(dir, "built")); string(b) != "2.0.0\n" {
		t.Errorf("built %q, want 2.0.0", b)
	}
}

// TestRetryRollbackUndoesDeploy: the rollback ran after verify failed, so deploy's success no longer
// stands; the retry deploys again.
func TestRetryRollbackUndoesDeploy(t *testing.T) {
	dir := t.TempDir()
	pb := loadIn(t, dir, `version: 1
name: deploy
steps:
  - id: build
    run: "true"
  - id: deploy
    needs: [build]
    run: echo on > deployed
  - id: verify
    needs: [deploy]
    run: test ! -f broken
  - id: rollback
    needs: [deploy, verify]
    if: failure()
    run: rm deployed
`)
	os.WriteFile(filepath.Join(dir, "broken"), nil, 0o600)
	first := runOnce(t, pb, nil)
	checkVerdicts(t, first, "deploy succeeded /\nverify failed /\nrollback succeeded /\n", "deploy", "verify", "rollback")
	os.Remove(filepath.Join(dir, "broken"))
	second := runOnce(t, pb, first)
	checkVerdicts(t, second, "build succeeded /undone:rollback\ndeploy succeeded /undone:rollback\nverify succeeded /not_succeeded:failed\nrollback skipped condition_false/\n",
		"build", "deploy", "verify", "rollback")
	if _, err := os.Stat(filepath.Join(dir, "deployed")); err != nil {
		t.Errorf("the retry left nothing deployed: %v", err)
	}
	// The rollback did not run in the retry: a retry of the retry reuses everything.
	third := runOnce(t, pb, second)
	checkVerdicts(t, third, "build succeeded reused/reused\ndeploy succeeded reused/reused\nverify succeeded reused/reused\nrollback skipped condition_false/\n",
		"build", "deploy", "verify", "rollback")
}

// TestRetryScriptChanged: a script whose file changed runs again, and so does what follows it even
// when its own inputs are the same.
func TestRetryScriptChanged(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "gen.sh")
	os.WriteFile(script, []byte("echo v=1 >> \"$PLAYBOOK_OUTPUT\"\n"), 0o700)
	src := `version: 1
name: script
steps:
  - id: gen
    script: gen.sh
    interpreter: sh
  - id: pack
    needs: [gen]
    run: "true"
  - id: ship
    needs: [pack]
    run: test ! -f broken
`
	pb := loadIn(t, dir, src)
	os.WriteFile(filepath.Join(dir, "broken"), nil, 0o600)
	first := runOnce(t, pb, nil)
	os.Remove(filepath.Join(dir, "broken"))
	unchanged := runOnce(t, pb, first)
	checkVerdicts(t, unchanged, "gen succeeded reused/reused\npack succeeded reused/reused\nship succeeded /not_succeeded:failed\n", "gen", "pack", "ship")
	os.WriteFile(script, []byte("echo v=2 >> \"$PLAYBOOK_OUTPUT\"\n"), 0o700)
	// A retry loads the playbook again (as `playbook retry` does), and with it the script.
	changed := runOnce(t, loadIn(t, dir, src), first)
	checkVerdicts(t, changed, "gen succeeded /inputs_changed\npack succeeded /need_not_reused:gen\nship succeeded /not_succeeded:failed\n", "gen", "pack", "ship")
	if got := changed["gen"].Outputs["v"]; got != "2" {
		t.Errorf("gen's output v = %q, want 2", got)
	}
}

// TestRetryOutputsReadAreInputs: a step reads another's output in its command; when that output
// differs, the step's fingerprint does too.
func TestRetryOutputsReadAreInputs(t *testing.T) {
	dir := t.TempDir()
	pb := loadIn(t, dir, `version: 1
name: outputs
steps:
  - id: tag
    run: echo "tag=v1" >> "$PLAYBOOK_OUTPUT"
  - id: image
    needs: [tag]
    run: echo "image ${{ steps.tag.outputs.tag }}"
  - id: push
    needs: [image]
    run: test ! -f broken
`)
	os.WriteFile(filepath.Join(dir, "broken"), nil, 0o600)
	first := runOnce(t, pb, nil)
	os.Remove(filepath.Join(dir, "broken"))
	// The record of tag says it produced v2 (an earlier retry of the same run could have): image
	// would now build another tag than it did.
	prev := map[string]*run.StepRecord{}
	for id, s := range first {
		c := *s
		prev[id] = &c
	}
	prev["tag"].Outputs = map[string]string{"tag": "v2"}
	second := runOnce(t, pb, prev)
	checkVerdicts(t, second, "tag succeeded reused/reused\nimage succeeded /inputs_changed\npush succeeded /not_succeeded:failed\n", "tag", "image", "push")
}

// TestRetryWithoutFingerprint: a step recorded before fingerprints existed is never reused.
func TestRetryWithoutFingerprint(t *testing.T) {
	pb := load(t, `version: 1
name: old
steps:
  - id: a
    run: "true"
`)
	first := runOnce(t, pb, nil)
	first["a"].Fingerprint = ""
	second := runOnce(t, pb, first)
	checkVerdicts(t, second, "a succeeded /no_fingerprint\n", "a")
}

// TestRetryMaskedOutputsRunAgain: a step whose output held a secret is recorded with "***" in its
// place; reusing it would hand "***" to the steps after it, so it runs again.
func TestRetryMaskedOutputsRunAgain(t *testing.T) {
	dir := t.TempDir()
	pb := loadIn(t, dir, `version: 1
name: masked
params:
  token: {secret: true}
steps:
  - id: login
    run: echo "header=Bearer $PLAYBOOK_PARAM_TOKEN" >> "$PLAYBOOK_OUTPUT"
  - id: call
    needs: [login]
    env: {H: "${{ steps.login.outputs.header }}"}
    run: echo "$H" > sent && test ! -f broken
`)
	os.WriteFile(filepath.Join(dir, "broken"), nil, 0o600)
	first := runOnce(t, pb, nil, "token=hunter2")
	if got := first["login"].Outputs["header"]; got != "Bearer ***" {
		t.Fatalf("recorded output %q, want it masked", got)
	}
	os.Remove(filepath.Join(dir, "broken"))
	second := runOnce(t, pb, first, "token=hunter2")
	checkVerdicts(t, second, "login succeeded /outputs_masked\ncall succeeded /not_succeeded:failed\n", "login", "call")
	if b, _ := os.ReadFile(filepath.Join(dir, "sent")); string(b) != "Bearer hunter2\n" {
		t.Errorf("call sent %q, want the real header", b)
	}
}
