package temporal

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// TestConnectionTLSAndAPIKey: the TLS files and the API key reach a real gRPC server as Temporal
// Cloud would see them: the server's certificate is checked against --tls-ca, the client presents
// --tls-cert, and every call carries the key as a bearer token.
func TestConnectionTLSAndAPIKey(t *testing.T) {
	dir := t.TempDir()
	ca, caKey := newCert(t, "test CA", nil, nil, true)
	srv, srvKey := newCert(t, "127.0.0.1", ca, caKey, false)
	cli, cliKey := newCert(t, "worker-1", ca, caKey, false)
	write := func(name string, blocks ...*pem.Block) string {
		var b []byte
		for _, bl := range blocks {
			b = append(b, pem.EncodeToMemory(bl)...)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	caFile := write("ca.pem", certBlock(ca))
	cliCert, cliKeyFile := write("client.pem", certBlock(cli)), write("client.key", keyBlock(t, cliKey))
	apiKey := filepath.Join(dir, "api-key")
	if err := os.WriteFile(apiKey, []byte("secret-key-123\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	pool := x509.NewCertPool()
	pool.AddCert(ca)
	var mu sync.Mutex
	var seen []string
	server := grpc.NewServer(
		grpc.Creds(credentials.NewTLS(&tls.Config{
			Certificates: []tls.Certificate{{Certificate: [][]byte{srv.Raw}, PrivateKey: srvKey}},
			ClientAuth:   tls.RequireAndVerifyClientCert, ClientCAs: pool,
		})),
		grpc.UnknownServiceHandler(func(_ any, stream grpc.ServerStream) error {
			md, _ := metadata.FromIncomingContext(stream.Context())
			who := ""
			if p, ok := peer.FromContext(stream.Context()); ok {
				if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.PeerCertificates) > 0 {
					who = ti.State.PeerCertificates[0].Subject.CommonName
				}
			}
			mu.Lock()
			seen = append(seen, who+" "+strings.Join(md.Get("authorization"), ","))
			mu.Unlock()
			return status.Error(codes.Unavailable, "not a Temporal server")
		}))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go server.Serve(lis)
	t.Cleanup(server.Stop)

	c := Connection{Address: lis.Addr().String(), TLSCAFile: caFile, TLSCertFile: cliCert, TLSKeyFile: cliKeyFile, APIKeyFile: apiKey}
	if cl, err := c.Dial(); err == nil {
		cl.Close()
	}
	mu.Lock()
	got := append([]string(nil), seen...)
	mu.Unlock()
	if len(got) == 0 || got[0] != "worker-1 Bearer secret-key-123" {
		t.Errorf("the server saw %q, want the client certificate worker-1 and the API key as a bearer token", got)
	}

	// Without the client certificate the server refuses the connection: nothing reaches it.
	mu.Lock()
	seen = nil
	mu.Unlock()
	c.TLSCertFile, c.TLSKeyFile = "", ""
	if cl, err := c.Dial(); err == nil {
		cl.Close()
		t.Error("Dial without a client certificate succeeded")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 0 {
		t.Errorf("a call without a client certificate reached the server: %q", seen)
	}
}

// TestConnectionErrors: each bad option is refused before any connection, naming its flag.
func TestConnectionErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)
	for _, tc := range []struct {
		c    Connection
		want string
	}{
		{Connection{}, "give --temporal HOST:PORT or set PLAYBOOK_TEMPORAL"},
		{Connection{Address: "x:1", TLSCAFile: filepath.Join(dir, "none.pem")}, "--tls-ca: open"},
		{Connection{Address: "x:1", TLSCAFile: empty}, "no PEM certificate"},
		{Connection{Address: "x:1", TLSCertFile: empty}, "--tls-cert and --tls-key go together"},
		{Connection{Address: "x:1", APIKeyFile: empty}, "--api-key-file " + empty + ": the file is empty"},
	} {
		if _, err := tc.c.Options(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.c, err, tc.want)
		}
	}
	c := Connection{Namespace: "ns"}
	c.FillFromEnv(func(k string) string {
		return map[string]string{"PLAYBOOK_TEMPORAL": "h:7233", "PLAYBOOK_TEMPORAL_NAMESPACE": "other"}[k]
	})
	if c.Address != "h:7233" || c.Namespace != "ns" {
		t.Errorf("FillFromEnv: %+v: want the address from the environment and the namespace given", c)
	}
}

func newCert(t *testing.T, cn string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, isCA bool) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IsCA:        isCA, BasicConstraintsValid: true}
	if ip := net.ParseIP(cn); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func certBlock(c *x509.Certificate) *pem.Block { return &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw} }

func keyBlock(t *testing.T, k *ecdsa.PrivateKey) *pem.Block {
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return &pem.Block{Type: "EC PRIVATE KEY", Bytes: der}
}
