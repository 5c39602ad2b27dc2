package scheduler

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"io"
	"os"
	"slices"

	"github.com/playbookhq/playbook/pkg/engine"
)

// perRunEnv are the variables that differ in every run whatever the step does: they are left out of
// the fingerprint, or no step would ever be reused.
var perRunEnv = map[string]bool{"PLAYBOOK_RUN_ID": true, "PLAYBOOK_OUTPUT": true}

// fingerprint is the keyed SHA-256 (HMAC-SHA256, hex) of what an attempt runs: the command as
// rendered (shell and command, argv, script path, interpreter and the script file's content, or
// the aws call), the environment playbook gives it (params, playbook and step env, rendered; the
// outputs of other steps it reads are in there or in the command), and its folder. Timeout, retry and
// stop settings are left out: they decide how long and how often the same thing runs, not what runs.
//
// Every field is written with its length first, so that no two different inputs give the same bytes.
func fingerprint(key []byte, req engine.Request) string {
	h := hmac.New(sha256.New, key)
	f := fields{h: h}
	f.str("playbook-step-fingerprint-v1")
	switch c := req.Command.(type) {
	case engine.Shell:
		f.str("run", c.Shell, c.Command)
	case engine.Exec:
		f.str("exec", c.Program)
		f.list(c.Args)
	case engine.Script:
		f.str("script", c.Path, c.Interpreter)
		f.file(c.Path)
	case engine.AWSCLI:
		f.str("aws", c.Service, c.Operation, c.Profile, c.Region)
		f.list(c.Args)
	default:
		f.str("unknown")
	}
	keys := make([]string, 0, len(req.Env))
	for k := range req.Env {
		if !perRunEnv[k] {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	f.num(uint64(len(keys)))
	for _, k := range keys {
		f.str(k, req.Env[k])
	}
	f.str("dir", req.Dir)
	return hex.EncodeToString(h.Sum(nil))
}

// fields writes length-prefixed values into a hash.
type fields struct {
	h   hash.Hash
	buf [binary.MaxVarintLen64]byte
}

func (f *fields) num(n uint64) {
	f.h.Write(f.buf[:binary.PutUvarint(f.buf[:], n)])
}

func (f *fields) str(values ...string) {
	for _, v := range values {
		f.num(uint64(len(v)))
		io.WriteString(f.h, v)
	}
}

func (f *fields) list(values []string) {
	f.num(uint64(len(values)))
	f.str(values...)
}

// file hashes a file's content. A file that cannot be read hashes as the error: the step will fail to
// start anyway, and a failed step is never reused.
func (f *fields) file(path string) {
	fh, err := os.Open(path)
	if err != nil {
		f.str("unreadable", err.Error())
		return
	}
	defer fh.Close()
	// The content's length is not known up front; hashing it apart gives the field a fixed length.
	c := sha256.New()
	if _, err := io.Copy(c, fh); err != nil {
		f.str("unreadable", err.Error())
		return
	}
	f.str("content", string(c.Sum(nil)))
}
