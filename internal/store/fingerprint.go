package store

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
)

// fingerprintKeySize is the length of the key in bytes (that of a SHA-256 block's worth of security).
const fingerprintKeySize = 32

// fingerprintKeyPath is the key file: in the lock folder, beside the database and never in it.
func (s *Store) fingerprintKeyPath() string { return filepath.Join(s.lockDir(), "fingerprint.key") }

// FingerprintKey returns the key of the steps' fingerprints (the key a runner hashes each step's inputs with): 32
// random bytes in the file locks/fingerprint.key beside the database (mode 0600, created by the first
// call). It is never stored in the database, so that a copy of the database alone does not let anyone
// test guesses of a secret param against a recorded fingerprint. Every database of the folder shares
// it. Should the file be lost, a retry only runs every step again (no fingerprint matches).
//
// A key file that is not a regular file of 32 bytes owned by this user and readable by nobody else is
// refused: whoever else can read or plant it could guess secrets or make fingerprints match.
func (s *Store) FingerprintKey() ([]byte, error) {
	path := s.fingerprintKeyPath()
	if err := os.MkdirAll(s.lockDir(), 0o700); err != nil {
		return nil, fmt.Errorf("fingerprint key: create folder %s: %w", s.lockDir(), err)
	}
	for range 2 {
		key, err := readKeyFile(path)
		if !errors.Is(err, os.ErrNotExist) {
			return key, err
		}
		if err := createKeyFile(path); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, err
		}
		// Made here, or by another process in the meantime: read what is there.
	}
	return readKeyFile(path)
}

func readKeyFile(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("fingerprint key %s: %w (a symlink is refused; remove it and a new key is made)", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("fingerprint key %s: %w", path, err)
	}
	bad := ""
	switch {
	case !fi.Mode().IsRegular():
		bad = "not a regular file"
	case fi.Mode().Perm()&0o077 != 0:
		bad = fmt.Sprintf("mode %#o lets other users read or change it", fi.Mode().Perm())
	case fi.Size() != fingerprintKeySize:
		bad = fmt.Sprintf("%d bytes, not %d", fi.Size(), fingerprintKeySize)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && bad == "" && int(st.Uid) != os.Geteuid() {
		bad = fmt.Sprintf("owned by uid %d, not by this user", st.Uid)
	}
	if bad != "" {
		return nil, fmt.Errorf("fingerprint key %s: %s; remove it and a new key is made (the next retry of an earlier run then runs every step again)", path, bad)
	}
	key := make([]byte, fingerprintKeySize)
	if _, err := io.ReadFull(f, key); err != nil {
		return nil, fmt.Errorf("fingerprint key %s: %w", path, err)
	}
	return key, nil
}

// createKeyFile writes a new key to a temporary file and links it into place, so that no process ever
// reads a half-written key; os.ErrExist when another process made one first.
func createKeyFile(path string) error {
	key := make([]byte, fingerprintKeySize)
	if _, err := rand.Read(key); err != nil {
		return fmt.Errorf("fingerprint key: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".fingerprint-key-*")
	if err != nil {
		return fmt.Errorf("fingerprint key: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(key)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("fingerprint key: write %s: %w", tmp.Name(), err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return err
		}
		return fmt.Errorf("fingerprint key: create %s: %w", path, err)
	}
	return nil
}
