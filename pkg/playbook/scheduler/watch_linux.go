//go:build linux

package scheduler

import (
	"bytes"
	"unsafe"

	"golang.org/x/sys/unix"
)

// outputsWatch tells which attempts wrote a $PLAYBOOK_OUTPUT file without looking each one up: an
// inotify watch on the run's folder reports every name created or moved into it. Most steps write no
// outputs, and the lookup of a missing name cost 15-20 us a step on the run loop here (ext4's own
// directory search), where reading an empty inotify queue is one short system call.
type outputsWatch struct {
	fd      int
	created map[string]bool // names reported and not yet asked about
	lost    bool            // the queue overflowed, or the folder went: every name may exist
	buf     []byte
}

// watchOutputs starts watching dir; nil when inotify is not available (every name may exist then).
func watchOutputs(dir string) *outputsWatch {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil
	}
	if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_CREATE|unix.IN_MOVED_TO|unix.IN_DELETE_SELF|unix.IN_MOVE_SELF|unix.IN_ONLYDIR); err != nil {
		unix.Close(fd)
		return nil
	}
	return &outputsWatch{fd: fd, created: map[string]bool{}, buf: make([]byte, 16<<10)}
}

// mayExist reports whether name may have been created in the folder, and forgets it. Call it after the
// process that would create it has ended: the kernel queues the event before the creating call returns,
// so it is in the queue by then. A nil watch answers true.
func (w *outputsWatch) mayExist(name string) bool {
	if w == nil {
		return true
	}
	w.drain()
	if w.lost {
		return true
	}
	if w.created[name] {
		delete(w.created, name)
		return true
	}
	return false
}

// drain reads the queued events into created.
func (w *outputsWatch) drain() {
	for !w.lost {
		n, err := unix.Read(w.fd, w.buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil || n <= 0 { // EAGAIN: nothing more; anything else: trust no answer
			if err != nil && err != unix.EAGAIN {
				w.lost = true
			}
			return
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&w.buf[off]))
			end := off + unix.SizeofInotifyEvent + int(ev.Len)
			if end > n {
				w.lost = true
				return
			}
			// An overflow loses events; a folder removed or moved (by a step) is no longer watched, and
			// a new one may take its path.
			if ev.Mask&(unix.IN_Q_OVERFLOW|unix.IN_DELETE_SELF|unix.IN_MOVE_SELF|unix.IN_IGNORED) != 0 {
				w.lost = true
				return
			}
			name := w.buf[off+unix.SizeofInotifyEvent : end]
			if i := bytes.IndexByte(name, 0); i >= 0 {
				name = name[:i]
			}
			if len(name) > 0 {
				w.created[string(name)] = true
			}
			off = end
		}
	}
}

func (w *outputsWatch) close() {
	if w != nil {
		unix.Close(w.fd)
	}
}
