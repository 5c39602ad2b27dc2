package temporal

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"

	"go.temporal.io/sdk/client"
)

// Connection says how to reach a Temporal server: what `playbook worker`, `run --temporal` and
// `attach` take as flags, each with an environment variable for when the flag is not given
// (FillFromEnv). The zero value is not usable: Address is required.
type Connection struct {
	Address   string // HOST:PORT of the frontend ($PLAYBOOK_TEMPORAL)
	Namespace string // "" is "default" ($PLAYBOOK_TEMPORAL_NAMESPACE)
	// KeyFile holds the key that encrypts payloads (params, commands, outputs) before they reach
	// Temporal (ReadKey); "" sends them in clear ($PLAYBOOK_TEMPORAL_KEY_FILE).
	KeyFile string
	// TLS, as Temporal Cloud or a self-hosted server with mTLS needs: CAFile verifies the server
	// (else the system's roots), CertFile and KeyFile (both or neither) are the client's certificate,
	// ServerName overrides the name checked in the server's certificate. Any of them turns TLS on
	// ($PLAYBOOK_TEMPORAL_TLS_CA, _TLS_CERT, _TLS_KEY, _TLS_SERVER_NAME).
	TLSCAFile, TLSCertFile, TLSKeyFile, TLSServerName string
	// APIKeyFile holds an API key (Temporal Cloud), sent with every call; it turns TLS on. A file,
	// not a flag's value, so that the key shows in no process list ($PLAYBOOK_TEMPORAL_API_KEY_FILE).
	APIKeyFile string
	// Identity names this process to Temporal (its pollers in the web UI); "" lets the SDK choose.
	Identity string
}

// FillFromEnv sets each field that is "" from its environment variable (see the fields).
func (c *Connection) FillFromEnv(getenv func(string) string) {
	for _, f := range []struct {
		field *string
		name  string
	}{
		{&c.Address, "PLAYBOOK_TEMPORAL"},
		{&c.Namespace, "PLAYBOOK_TEMPORAL_NAMESPACE"},
		{&c.KeyFile, "PLAYBOOK_TEMPORAL_KEY_FILE"},
		{&c.TLSCAFile, "PLAYBOOK_TEMPORAL_TLS_CA"},
		{&c.TLSCertFile, "PLAYBOOK_TEMPORAL_TLS_CERT"},
		{&c.TLSKeyFile, "PLAYBOOK_TEMPORAL_TLS_KEY"},
		{&c.TLSServerName, "PLAYBOOK_TEMPORAL_TLS_SERVER_NAME"},
		{&c.APIKeyFile, "PLAYBOOK_TEMPORAL_API_KEY_FILE"},
	} {
		if *f.field == "" {
			*f.field = getenv(f.name)
		}
	}
}

// Options turns the connection into the SDK's client options, reading the files it names. Errors
// name the file and the flag, and say what to do.
func (c Connection) Options() (client.Options, error) {
	if c.Address == "" {
		return client.Options{}, errors.New("no Temporal server: give --temporal HOST:PORT or set PLAYBOOK_TEMPORAL")
	}
	opts := client.Options{HostPort: c.Address, Namespace: c.Namespace, Identity: c.Identity}
	if opts.Namespace == "" {
		opts.Namespace = "default"
	}
	if c.KeyFile != "" {
		key, err := ReadKey(c.KeyFile)
		if err != nil {
			return client.Options{}, err
		}
		codec, err := NewCodec(key)
		if err != nil {
			return client.Options{}, err
		}
		opts.DataConverter = codec.DataConverter()
	}
	if c.TLSCAFile != "" || c.TLSCertFile != "" || c.TLSKeyFile != "" || c.TLSServerName != "" {
		cfg := &tls.Config{ServerName: c.TLSServerName, MinVersion: tls.VersionTLS12}
		if c.TLSCAFile != "" {
			pem, err := os.ReadFile(c.TLSCAFile)
			if err != nil {
				return client.Options{}, fmt.Errorf("--tls-ca: %w", err)
			}
			cfg.RootCAs = x509.NewCertPool()
			if !cfg.RootCAs.AppendCertsFromPEM(pem) {
				return client.Options{}, fmt.Errorf("--tls-ca %s: no PEM certificate in the file", c.TLSCAFile)
			}
		}
		if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
			return client.Options{}, errors.New("--tls-cert and --tls-key go together: give both (the client certificate and its private key) or neither")
		}
		if c.TLSCertFile != "" {
			cert, err := tls.LoadX509KeyPair(c.TLSCertFile, c.TLSKeyFile)
			if err != nil {
				return client.Options{}, fmt.Errorf("--tls-cert %s, --tls-key %s: %w", c.TLSCertFile, c.TLSKeyFile, err)
			}
			cfg.Certificates = []tls.Certificate{cert}
		}
		opts.ConnectionOptions.TLS = cfg
	}
	if c.APIKeyFile != "" {
		b, err := os.ReadFile(c.APIKeyFile)
		if err != nil {
			return client.Options{}, fmt.Errorf("--api-key-file: %w", err)
		}
		key := strings.TrimSpace(string(b))
		if key == "" {
			return client.Options{}, fmt.Errorf("--api-key-file %s: the file is empty", c.APIKeyFile)
		}
		opts.Credentials = client.NewAPIKeyStaticCredentials(key)
		if opts.ConnectionOptions.TLS == nil {
			// An API key is a bearer secret: never sent over a connection in clear.
			opts.ConnectionOptions.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
		}
	}
	return opts, nil
}

// Dial connects to the server, and checks that it answers.
func (c Connection) Dial() (client.Client, error) {
	opts, err := c.Options()
	if err != nil {
		return nil, err
	}
	cl, err := client.Dial(opts)
	if err != nil {
		return nil, fmt.Errorf("connect to Temporal at %s: %w", c.Address, err)
	}
	return cl, nil
}
