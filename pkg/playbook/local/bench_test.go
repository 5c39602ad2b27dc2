package local

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/playbookhq/playbook/pkg/engine"
	"github.com/playbookhq/playbook/pkg/playbook"
	"github.com/playbookhq/playbook/pkg/run"
)

// BenchmarkOverheadChain measures what the scheduler adds to the engine on a chain of /bin/true steps,
// the claim of the run issue ("no measurable cost per step beyond the engine"). It alternates blocks of
// 100 launches (this machine's noise hits both alike): the engine alone, Engine.Run one after another on
// one goroutine, and Run of a 100-step chain playbook without a Recorder or Observer (a run's own set-up
// and clean-up included, as a real run pays them). It reports overhead-% of the engine's time,
// overhead-µs/step and engine-µs/step (ns/op counts both launches of a step and means nothing here).
// Recording's cost comes on top: internal/store's BenchmarkRecordingOverheadChain.
//
//	go test -run '^$' -bench OverheadChain -benchtime 2000x ./pkg/playbook/scheduler/
func BenchmarkOverheadChain(b *testing.B) {
	if _, err := os.Stat("/bin/true"); err != nil {
		b.Skip("no /bin/true")
	}
	const block = 100
	var src strings.Builder
	src.WriteString("version: 1\nname: chain\nmax_parallel: 1\nsteps:\n  - {id: s0, exec: [/bin/true]}\n")
	for i := 1; i < block; i++ {
		fmt.Fprintf(&src, "  - {id: s%d, needs: s%d, exec: [/bin/true]}\n", i, i-1)
	}
	pb, err := playbook.Parse(filepath.Join(b.TempDir(), "chain.yaml"), []byte(src.String()))
	if err != nil {
		b.Fatal(err)
	}
	eng, err := engine.New(engine.Config{MaxConcurrent: 1, DefaultTimeout: engine.NoTimeout,
		MaxTimeout: engine.NoTimeout, Retention: time.Nanosecond})
	if err != nil {
		b.Fatal(err)
	}
	defer eng.Close()
	ctx := context.Background()
	req := engine.Request{Command: engine.Exec{Program: "/bin/true"}, Timeout: engine.NoTimeout}

	var alone, scheduled time.Duration
	blocks := (b.N + block - 1) / block
	b.ResetTimer()
	for range blocks {
		start := time.Now()
		for range block {
			if r, err := eng.Run(ctx, req); err != nil || r.ExitCode != 0 {
				b.Fatal(r, err)
			}
		}
		alone += time.Since(start)
		eng.Cleanup()

		start = time.Now()
		sum, err := Run(ctx, pb, Options{})
		if err != nil || sum.Run.Status != run.StatusSucceeded {
			b.Fatal(sum, err)
		}
		scheduled += time.Since(start)
	}
	b.StopTimer()
	n := float64(blocks * block)
	b.ReportMetric(100*float64(scheduled-alone)/float64(alone), "overhead-%")
	b.ReportMetric(float64((scheduled-alone).Microseconds())/n, "overhead-µs/step")
	b.ReportMetric(float64(alone.Microseconds())/n, "engine-µs/step")
}
