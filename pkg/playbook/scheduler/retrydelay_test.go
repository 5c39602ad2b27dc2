package scheduler

import (
	"testing"
	"time"

	"github.com/playbookhq/playbook/pkg/playbook"
)

// TestRetryDelay: delay x backoff^(attempt-1), capped by max_delay, and never overflowing.
func TestRetryDelay(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		p       playbook.Retry
		attempt int
		want    time.Duration
	}{
		{playbook.Retry{Delay: 100 * ms}, 1, 100 * ms},
		{playbook.Retry{Delay: 100 * ms}, 5, 100 * ms},
		{playbook.Retry{Delay: 100 * ms, Backoff: 1}, 3, 100 * ms},
		{playbook.Retry{Delay: 100 * ms, Backoff: 2}, 1, 100 * ms},
		{playbook.Retry{Delay: 100 * ms, Backoff: 2}, 2, 200 * ms},
		{playbook.Retry{Delay: 100 * ms, Backoff: 2}, 4, 800 * ms},
		{playbook.Retry{Delay: 100 * ms, Backoff: 2, MaxDelay: 300 * ms}, 3, 300 * ms},
		{playbook.Retry{Delay: time.Second, Backoff: 10, MaxDelay: time.Hour}, 100, time.Hour},
		{playbook.Retry{Delay: time.Second, Backoff: 10}, 100, time.Duration(1 << 62)},
		{playbook.Retry{}, 3, 0},
	} {
		if got := retryDelay(tc.p, tc.attempt); got != tc.want {
			t.Errorf("retryDelay(%+v, %d) = %v, want %v", tc.p, tc.attempt, got, tc.want)
		}
	}
}
