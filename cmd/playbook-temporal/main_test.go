package main

import (
	"fmt"
	"os"
	"testing"
)

// TestMain keeps every database the tests' processes open by default (a worker without --db, say)
// out of the user's home: PLAYBOOK_DB is cleared and XDG_STATE_HOME is a folder of this test binary.
func TestMain(m *testing.M) {
	state, err := os.MkdirTemp("", "playbook-temporal-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Unsetenv("PLAYBOOK_DB")
	os.Setenv("XDG_STATE_HOME", state)
	code := m.Run()
	os.RemoveAll(state)
	os.Exit(code)
}
