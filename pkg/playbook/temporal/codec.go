package temporal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"
)

// encryptedEncoding marks a payload this codec encrypted.
const encryptedEncoding = "binary/playbook-aes256gcm"

// Codec encrypts every payload (params, commands, outputs, records) before it reaches Temporal, with
// AES-256-GCM and a key both the submitter and the workers hold: secrets travel to workers, and must
// never sit in clear in Temporal's history or its web UI. A payload it did not encrypt is decoded as
// it is; one encrypted with another key fails to decode, saying so.
type Codec struct{ aead cipher.AEAD }

// NewCodec makes a Codec from a 32-byte key.
func NewCodec(key []byte) (*Codec, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("the encryption key is %d bytes; it must be 32 (64 hex digits)", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Codec{aead: aead}, nil
}

// ReadKey reads an encryption key from a file: 64 hex digits (surrounding blanks ignored) or 32 raw
// bytes. A file that others can read is refused, as ssh refuses such a private key.
func ReadKey(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("read the encryption key: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("the encryption key %s is readable by others (mode %04o): chmod 600 it", path, fi.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read the encryption key: %w", err)
	}
	if text := strings.TrimSpace(string(data)); len(text) == 64 {
		if key, err := hex.DecodeString(text); err == nil {
			return key, nil
		}
	}
	if len(data) == 32 {
		return data, nil
	}
	return nil, fmt.Errorf("the encryption key %s holds neither 64 hex digits nor 32 bytes", path)
}

// Encode encrypts each payload whole (its metadata included).
func (c *Codec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		plain, err := proto.Marshal(p)
		if err != nil {
			return payloads, err
		}
		nonce := make([]byte, c.aead.NonceSize(), c.aead.NonceSize()+len(plain)+c.aead.Overhead())
		if _, err := rand.Read(nonce); err != nil {
			return payloads, err
		}
		out[i] = &commonpb.Payload{
			Metadata: map[string][]byte{converter.MetadataEncoding: []byte(encryptedEncoding)},
			Data:     c.aead.Seal(nonce, nonce, plain, nil),
		}
	}
	return out, nil
}

// Decode decrypts the payloads Encode made and leaves others as they are.
func (c *Codec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if string(p.Metadata[converter.MetadataEncoding]) != encryptedEncoding {
			out[i] = p
			continue
		}
		n := c.aead.NonceSize()
		if len(p.Data) < n {
			return payloads, errors.New("an encrypted payload is too short")
		}
		plain, err := c.aead.Open(nil, p.Data[:n], p.Data[n:], nil)
		if err != nil {
			return payloads, errors.New("an encrypted payload does not decrypt: the submitter and this worker hold different keys")
		}
		out[i] = &commonpb.Payload{}
		if err := proto.Unmarshal(plain, out[i]); err != nil {
			return payloads, err
		}
	}
	return out, nil
}

// DataConverter is Temporal's default data converter with c encrypting what it produces.
func (c *Codec) DataConverter() converter.DataConverter {
	return converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), c)
}
