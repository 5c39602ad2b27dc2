//go:build !linux

package scheduler

// outputsWatch is Linux's inotify watch of the outputs folder; elsewhere every name may exist.
type outputsWatch struct{}

func watchOutputs(string) *outputsWatch           { return nil }
func (w *outputsWatch) mayExist(name string) bool { return true }
func (w *outputsWatch) close()                    {}
