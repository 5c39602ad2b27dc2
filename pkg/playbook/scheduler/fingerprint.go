package scheduler

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"slices"
)

// perRunEnv are the variables that differ in every run whatever the step does: they are left out of
// the fingerprint, or no step would ever be reused.
var perRunEnv = map[string]bool{"PLAYBOOK_RUN_ID": true, "PLAYBOOK_OUTPUT": true}

// fingerprinter computes steps' fingerprints. It keeps its hash and buffer from step to step: a
// fresh HMAC and a write per field cost several times the hashing itself, once per step started.
// Not safe for concurrent use (the run loop is its one user).
type fingerprinter struct {
	h    hash.Hash
	buf  []byte
	keys []string
	sum  [sha256.Size]byte
}

func newFingerprinter(key []byte) *fingerprinter {
	return &fingerprinter{h: hmac.New(sha256.New, key)}
}

// fingerprint is the keyed SHA-256 (HMAC-SHA256, hex) of what an attempt runs: the command as
// rendered (shell and command, argv, script path, interpreter and the script file's content, or
// the aws call), the environment playbook gives it (params, playbook and step env, rendered; the
// outputs of other steps it reads are in there or in the command), and its folder. Timeout, retry and
// stop settings are left out: they decide how long and how often the same thing runs, not what runs.
//
// Every field is written with its length first, so that no two different inputs give the same bytes.
func (f *fingerprinter) fingerprint(l *Launch) string {
	f.buf = f.buf[:0]
	f.str("playbook-step-fingerprint-v1")
	switch {
	case l.Argv != nil:
		f.str("exec", l.Argv[0])
		f.list(l.Argv[1:])
	case l.Script != "":
		f.str("script", l.Script, l.Interpreter)
		f.digest(l.scriptSHA256)
	case l.AWS != nil:
		f.str("aws", l.AWS.Service, l.AWS.Operation, l.AWS.Profile, l.AWS.Region)
		f.list(l.AWS.Args)
	default:
		f.str("run", l.Shell, l.Run)
	}
	f.keys = f.keys[:0]
	for k := range l.Env {
		if !perRunEnv[k] {
			f.keys = append(f.keys, k)
		}
	}
	slices.Sort(f.keys)
	f.num(uint64(len(f.keys)))
	for _, k := range f.keys {
		f.str(k, l.Env[k])
	}
	f.str("dir", l.Dir)
	f.h.Reset()
	f.h.Write(f.buf)
	return hex.EncodeToString(f.h.Sum(f.sum[:0]))
}

func (f *fingerprinter) num(n uint64) { f.buf = binary.AppendUvarint(f.buf, n) }

func (f *fingerprinter) str(values ...string) {
	for _, v := range values {
		f.num(uint64(len(v)))
		f.buf = append(f.buf, v...)
	}
}

func (f *fingerprinter) list(values []string) {
	f.num(uint64(len(values)))
	f.str(values...)
}

// digest adds a script's content as its SHA-256 (of fixed length), taken when the playbook was
// loaded. A file that could not be read then adds that: the step will fail to start, and a failed
// step is never reused.
func (f *fingerprinter) digest(sha256Hex string) {
	sum, err := hex.DecodeString(sha256Hex)
	if err != nil || len(sum) != sha256.Size {
		f.str("unreadable")
		return
	}
	f.str("content")
	f.buf = append(f.buf, sum...)
}
