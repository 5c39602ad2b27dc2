package cli

import (
	"encoding/json"
	"os"
	"testing"
)

// TestRunsJSONHasOwner: runs --json has the owner columns the README lists, as recorded by the
// process that started the run (here the test itself).
func TestRunsJSONHasOwner(t *testing.T) {
	db := seedDB(t)
	r := runCLI(t, nil, "runs", "--db", db, "--json")
	var runs []map[string]any
	if err := json.Unmarshal([]byte(r.Stdout), &runs); err != nil || len(runs) == 0 {
		t.Fatalf("runs --json: %v\n%s%s", err, r.Stdout, r.Stderr)
	}
	host, _ := os.Hostname()
	for _, run := range runs {
		for _, k := range []string{"owner_pid", "owner_start", "owner_host", "owner_boot_id"} {
			if _, ok := run[k]; !ok {
				t.Errorf("run %v lacks %q", run["id"], k)
			}
		}
		if pid, _ := run["owner_pid"].(float64); int(pid) != os.Getpid() {
			t.Errorf("owner_pid = %v, want %d (the process that recorded the run)", run["owner_pid"], os.Getpid())
		}
		if run["owner_host"] != host {
			t.Errorf("owner_host = %v, want %q", run["owner_host"], host)
		}
		if start, _ := run["owner_start"].(float64); start <= 0 {
			t.Errorf("owner_start = %v, want the runner's start time in clock ticks", run["owner_start"])
		}
	}
}
