package local

import "testing"

// TestDefaultMaxParallel: the default never serialises a small machine's waiting steps (at least 16),
// and grows with the machine (4 per CPU).
func TestDefaultMaxParallel(t *testing.T) {
	for cpus, want := range map[int]int{1: 16, 2: 16, 4: 16, 5: 20, 64: 256} {
		if got := DefaultMaxParallel(cpus); got != want {
			t.Errorf("DefaultMaxParallel(%d) = %d, want %d", cpus, got, want)
		}
	}
}
