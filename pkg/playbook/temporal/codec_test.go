package temporal

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCodec: what the codec encodes holds nothing of the clear text, decodes back to the same value,
// and does not decode with another key.
func TestCodec(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	c, err := NewCodec(key)
	if err != nil {
		t.Fatal(err)
	}
	dc := c.DataConverter()
	p, err := dc.ToPayload(StepRequest{StepID: "deploy", Secrets: []string{"hunter2-MARKER"}})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(p.Data, []byte("hunter2-MARKER")) || bytes.Contains(p.Data, []byte("deploy")) {
		t.Errorf("the encoded payload holds clear text")
	}
	var back StepRequest
	if err := dc.FromPayload(p, &back); err != nil || back.StepID != "deploy" || back.Secrets[0] != "hunter2-MARKER" {
		t.Fatalf("decoded %+v (%v)", back, err)
	}
	other, _ := NewCodec(bytes.Repeat([]byte{8}, 32))
	if err := other.DataConverter().FromPayload(p, &back); err == nil || !strings.Contains(err.Error(), "different keys") {
		t.Errorf("another key decoded it: %v", err)
	}
	if _, err := NewCodec(key[:16]); err == nil {
		t.Errorf("a 16-byte key was accepted")
	}
}

// TestReadKey: a key file holds 64 hex digits or 32 bytes, and is readable by its owner only.
func TestReadKey(t *testing.T) {
	dir := t.TempDir()
	hexKey := filepath.Join(dir, "hex")
	os.WriteFile(hexKey, []byte(strings.Repeat("ab", 32)+"\n"), 0o600)
	if k, err := ReadKey(hexKey); err != nil || len(k) != 32 || k[0] != 0xab {
		t.Errorf("hex key: %x %v", k, err)
	}
	open := filepath.Join(dir, "open")
	os.WriteFile(open, []byte(strings.Repeat("ab", 32)), 0o644)
	if _, err := ReadKey(open); err == nil || !strings.Contains(err.Error(), "readable by others") {
		t.Errorf("a world-readable key: %v", err)
	}
	short := filepath.Join(dir, "short")
	os.WriteFile(short, []byte("abc"), 0o600)
	if _, err := ReadKey(short); err == nil {
		t.Errorf("a 3-byte key was accepted")
	}
}
