package local

import (
	"testing"

	"go.uber.org/goleak"
)

// Every run closes its engine and its subscription: no goroutine may outlive the tests.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
