package engine

import (
	"bytes"
	"context"
	"os/exec"
	"runtime"
	"runtime/metrics"
	"strconv"
	"sync"
	"testing"
	"time"
)

// BenchmarkLaunch compares starting /bin/true one after another through the engine with doing it with
// os/exec directly. "engine" uses Run (the process is waited for on the caller's goroutine);
// "engine-execute" uses Execute then Wait (a runner goroutine per execution, as the scheduler does);
// "osexec" captures both streams into buffers, which is the work the engine does; "osexec-discard" leaves
// them unset (/dev/null), the cheapest possible launch. On a shared machine run the variants alternately
// (-test.bench 'Launch/^engine$' then 'Launch/^osexec$', several rounds) and compare medians.
func BenchmarkLaunch(b *testing.B) {
	b.Run("engine-execute", func(b *testing.B) {
		e := newEngine(b, Config{MaxKept: 64})
		ctx := context.Background()
		req := Request{Command: Exec{Program: "/bin/true"}}
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			id, err := e.Execute(req)
			if err != nil {
				b.Fatal(err)
			}
			if r, err := e.Wait(ctx, id); err != nil || r.ExitCode != 0 {
				b.Fatal(r, err)
			}
			if i%256 == 255 {
				e.Cleanup()
			}
		}
	})
	b.Run("engine", func(b *testing.B) {
		e := newEngine(b, Config{MaxKept: 64})
		ctx := context.Background()
		req := Request{Command: Exec{Program: "/bin/true"}}
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			r, err := e.Run(ctx, req)
			if err != nil || r.ExitCode != 0 {
				b.Fatal(r, err)
			}
			if i%256 == 255 {
				e.Cleanup()
			}
		}
	})
	b.Run("osexec", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var out, errb bytes.Buffer
			cmd := exec.Command("/bin/true")
			cmd.Stdout, cmd.Stderr = &out, &errb
			if err := cmd.Run(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("osexec-discard", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := exec.Command("/bin/true").Run(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkOutput1GiB pushes 1 GiB of stdout through the engine (default 1 MiB capture, no subscriber)
// and reports throughput and the peak of live heap objects sampled during the run.
func BenchmarkOutput1GiB(b *testing.B) {
	const size = 1 << 30
	// Results are dropped after each run (Retention 1ns + Cleanup) so the peak reflects one execution.
	e := newEngine(b, Config{Retention: time.Nanosecond})
	req := helperReq("blast", strconv.Itoa(size))
	ctx := context.Background()
	var peak, base uint64
	b.SetBytes(size)
	for b.Loop() {
		e.Cleanup()
		runtime.GC()
		base = max(base, heapObjects())
		stop := sampleHeap(&peak)
		r, err := e.Run(ctx, req)
		stop()
		if err != nil || r.StdoutBytes != size || r.ExitCode != 0 {
			b.Fatal(r, err)
		}
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(base)/(1<<20), "base-heap-MiB")
	if peak > 16<<20 {
		b.Errorf("peak heap %d MiB > 16 MiB", peak>>20)
	}
}

func heapObjects() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// sampleHeap records the largest heap-objects size seen every millisecond until stop is called.
func sampleHeap(peak *uint64) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			*peak = max(*peak, heapObjects())
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}
