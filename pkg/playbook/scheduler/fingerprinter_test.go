package scheduler

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"
)

var fpKey = []byte("0123456789abcdef0123456789abcdef")

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// TestFingerprint: what a step runs is in its fingerprint, the per-run variables are not, and the
// key changes everything (a secret param cannot be guessed from a recorded fingerprint without it).
func TestFingerprint(t *testing.T) {
	base := func() *Launch {
		return &Launch{
			Run: "make VERSION=1",
			Env: map[string]string{"PLAYBOOK_PARAM_TOKEN": "hunter2", "PLAYBOOK_RUN_ID": "r1", "PLAYBOOK_OUTPUT": "/tmp/x/a.1.out"},
			Dir: "/srv/app",
		}
	}
	want := newFingerprinter(fpKey).fingerprint(base())
	if len(want) != 64 {
		t.Fatalf("fingerprint %q is not 64 hex digits", want)
	}
	perRun := base()
	perRun.Env["PLAYBOOK_RUN_ID"], perRun.Env["PLAYBOOK_OUTPUT"] = "r2", "/tmp/y/a.1.out"
	if got := newFingerprinter(fpKey).fingerprint(perRun); got != want {
		t.Errorf("the run id or outputs file changed the fingerprint")
	}
	same := base()
	same.Display, same.Timeout, same.StopGrace = "something else", 5, 7
	if got := newFingerprinter(fpKey).fingerprint(same); got != want {
		t.Errorf("how the step is shown or stopped changed the fingerprint")
	}
	differs := map[string]func(*Launch){
		"command":   func(l *Launch) { l.Run = "make VERSION=2" },
		"shell":     func(l *Launch) { l.Shell = "sh" },
		"exec":      func(l *Launch) { l.Run, l.Argv = "", []string{"make", "VERSION=1"} },
		"secret":    func(l *Launch) { l.Env["PLAYBOOK_PARAM_TOKEN"] = "hunter3" },
		"env added": func(l *Launch) { l.Env["X"] = "" },
		"dir":       func(l *Launch) { l.Dir = "/" },
		"script":    func(l *Launch) { l.Run, l.Script, l.scriptSHA256 = "", "/srv/app/s.sh", sha("echo 1\n") },
		"aws":       func(l *Launch) { l.Run, l.AWS = "", &AWSCall{Service: "s3", Operation: "ls"} },
	}
	for name, change := range differs {
		l := base()
		change(l)
		if newFingerprinter(fpKey).fingerprint(l) == want {
			t.Errorf("%s: the fingerprint did not change", name)
		}
	}
	// One fingerprinter serves a whole run: what it hashed before does not leak into the next.
	f := newFingerprinter(fpKey)
	f.fingerprint(&Launch{Script: "/s.sh", Env: map[string]string{"A": "1", "B": "2", "C": "3"}})
	if got := f.fingerprint(base()); got != want {
		t.Errorf("a reused fingerprinter gives %s, want %s", got, want)
	}
	if newFingerprinter([]byte("another key")).fingerprint(base()) == want {
		t.Errorf("another key gives the same fingerprint")
	}
	script := func(content string) string {
		return newFingerprinter(fpKey).fingerprint(&Launch{Script: "/s.sh", scriptSHA256: content})
	}
	if script(sha("echo 1\n")) == script(sha("echo 2\n")) {
		t.Errorf("the script's content is not in the fingerprint")
	}
	if script("") == script(sha("echo 1\n")) {
		t.Errorf("an unreadable script has the fingerprint of a readable one")
	}
	// Length prefixes: moving a character from one field to the next changes the fingerprint.
	x := newFingerprinter(fpKey).fingerprint(&Launch{Argv: []string{"ab", "c"}})
	y := newFingerprinter(fpKey).fingerprint(&Launch{Argv: []string{"a", "bc"}})
	if x == y {
		t.Errorf("exec [ab c] and [a bc] have the same fingerprint")
	}
}
