package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// logFile is one open output file of an execution. Both streams may write to it (LogPath), so writes are
// serialised. After the first write error it stops writing and remembers the error for Result.Warning.
type logFile struct {
	mu   sync.Mutex
	f    *os.File
	path string
	err  error
}

func (l *logFile) write(p []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return
	}
	if _, err := l.f.Write(p); err != nil {
		l.err = err
	}
}

func (l *logFile) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.f.Close(); err != nil && l.err == nil {
		l.err = err
	}
}

// createPrivate creates (or truncates) path with mode 0600, creating missing folders with mode 0700,
// because logs may hold data the user would not want others on the machine to read.
func createPrivate(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
}

// outputFiles opens every file an execution writes (request paths and LogDir), one writer per distinct
// path, and returns the writers of each stream. On error the files already opened are closed again.
func outputFiles(sp *spec, logDir string) (all, stdout, stderr []*logFile, err error) {
	byPath := map[string]*logFile{}
	open := func(path string) (*logFile, error) {
		abs, err := filepath.Abs(path)
		if err != nil {
			return nil, err
		}
		if l := byPath[abs]; l != nil {
			return l, nil
		}
		f, err := createPrivate(abs)
		if err != nil {
			return nil, err
		}
		l := &logFile{f: f, path: abs}
		byPath[abs] = l
		all = append(all, l)
		return l, nil
	}
	add := func(path string, toOut, toErr bool) error {
		if path == "" {
			return nil
		}
		l, err := open(path)
		if err != nil {
			return err
		}
		if toOut && !containsFile(stdout, l) {
			stdout = append(stdout, l)
		}
		if toErr && !containsFile(stderr, l) {
			stderr = append(stderr, l)
		}
		return nil
	}
	type target struct {
		path       string
		out, toErr bool
	}
	targets := []target{{sp.logPath, true, true}, {sp.outPath, true, false}, {sp.errPath, false, true}}
	if logDir != "" {
		targets = append(targets,
			target{filepath.Join(logDir, sp.id+".stdout"), true, false},
			target{filepath.Join(logDir, sp.id+".stderr"), false, true})
	}
	for _, t := range targets {
		if err := add(t.path, t.out, t.toErr); err != nil {
			for _, l := range all {
				l.f.Close()
			}
			return nil, nil, nil, fmt.Errorf("open output file: %w", err)
		}
	}
	return all, stdout, stderr, nil
}

func containsFile(list []*logFile, l *logFile) bool {
	for _, x := range list {
		if x == l {
			return true
		}
	}
	return false
}

// fileWarnings describes write errors of the files, for Result.Warning.
func fileWarnings(files []*logFile) string {
	var ws []string
	for _, l := range files {
		if l.err != nil {
			ws = append(ws, fmt.Sprintf("log file %s incomplete: %v", l.path, l.err))
		}
	}
	return strings.Join(ws, "; ")
}
