package mask

import (
	"bytes"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestNewIgnoresEmptyAndDuplicates(t *testing.T) {
	if m := New(nil); m != nil || !m.Empty() {
		t.Fatalf("New(nil) = %v, want nil and Empty", m)
	}
	if m := New([]string{"", ""}); m != nil {
		t.Fatalf("New of empty values = %v, want nil", m)
	}
	m := New([]string{"a", "", "a", "bb"})
	if got := len(m.secrets); got != 2 {
		t.Fatalf("kept %d secrets, want 2", got)
	}
}

func TestString(t *testing.T) {
	tests := []struct {
		name    string
		secrets []string
		in      string
		want    string
	}{
		{"no secrets", nil, "token=abc", "token=abc"},
		{"one", []string{"abc"}, "token=abc", "token=***"},
		{"every occurrence", []string{"abc"}, "abcabc abc", "****** ***"},
		{"longest at a position wins", []string{"abc", "abcdef"}, "xabcdefx", "x***x"},
		{"leftmost wins over longer later", []string{"abc", "bcdefg"}, "abcdefg", "***defg"},
		{"overlapping copies", []string{"aa"}, "aaaaa", "******a"},
		{"no match", []string{"zzz"}, "hello", "hello"},
		{"whole", []string{"s3cr3t"}, "s3cr3t", "***"},
		{"invalid utf8 kept", []string{"\xff"}, "a\xffb\xfe", "a***b\xfe"},
		{"empty input", []string{"x"}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New(tt.secrets)
			if got := m.String(tt.in); got != tt.want {
				t.Errorf("String(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if got := string(m.Bytes([]byte(tt.in))); got != tt.want {
				t.Errorf("Bytes(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if got := streamed(m, []byte(tt.in), 1); got != tt.want {
				t.Errorf("Writer byte by byte(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestBytesDoesNotModifyInput(t *testing.T) {
	m := New([]string{"pw"})
	in := []byte("my pw here")
	out := m.Bytes(in)
	if string(in) != "my pw here" || string(out) != "my *** here" {
		t.Fatalf("in=%q out=%q", in, out)
	}
	clean := []byte("nothing")
	if got := m.Bytes(clean); &got[0] != &clean[0] {
		t.Fatal("Bytes copied an input without matches")
	}
}

// streamed writes in through a Writer in chunks of at most chunk bytes and returns what came out.
func streamed(m *Masker, in []byte, chunk int) string {
	var out bytes.Buffer
	w := m.Writer(&out)
	for len(in) > 0 {
		n := min(chunk, len(in))
		if k, err := w.Write(in[:n]); err != nil || k != n {
			panic("short write")
		}
		in = in[n:]
	}
	if err := w.Close(); err != nil {
		panic(err)
	}
	return out.String()
}

func TestWriterSecretSplitAcrossWrites(t *testing.T) {
	m := New([]string{"hunter2"})
	var out bytes.Buffer
	w := m.Writer(&out)
	io.WriteString(w, "password: hun")
	if strings.Contains(out.String(), "hun") {
		t.Fatalf("a possible secret prefix was written early: %q", out.String())
	}
	io.WriteString(w, "ter2 done, hunt")
	io.WriteString(w, "ing\n")
	w.Flush()
	if got, want := out.String(), "password: *** done, hunting\n"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestWriterFlushReleasesHeldPrefix(t *testing.T) {
	m := New([]string{"secret"})
	var out bytes.Buffer
	w := m.Writer(&out)
	io.WriteString(w, "the end: sec")
	if got := out.String(); got != "the end: " {
		t.Fatalf("before flush %q", got)
	}
	w.Flush()
	if got := out.String(); got != "the end: sec" {
		t.Fatalf("after flush %q", got)
	}
}

// Every way of splitting the input into writes must give the same result as masking it whole.
func TestWriterEverySplit(t *testing.T) {
	m := New([]string{"abcab", "ab", "bca", "zz"})
	in := []byte("xabcabcabzzzabcaby abca zz")
	want := string(m.Bytes(in))
	for cut1 := 0; cut1 <= len(in); cut1++ {
		for cut2 := cut1; cut2 <= len(in); cut2++ {
			var out bytes.Buffer
			w := m.Writer(&out)
			w.Write(in[:cut1])
			w.Write(in[cut1:cut2])
			w.Write(in[cut2:])
			w.Close()
			if out.String() != want {
				t.Fatalf("cuts %d,%d: got %q, want %q", cut1, cut2, out.String(), want)
			}
		}
	}
}

func TestRandomStreamsMatchWhole(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	alphabet := "ab\nc"
	for iter := 0; iter < 2000; iter++ {
		var secrets []string
		for range 1 + r.IntN(3) {
			secrets = append(secrets, randString(r, alphabet, 1+r.IntN(4)))
		}
		m := New(secrets)
		in := []byte(randString(r, alphabet, r.IntN(60)))
		want := string(m.Bytes(in))
		if got := streamed(m, in, 1+r.IntN(7)); got != want {
			t.Fatalf("secrets %q input %q: streamed %q, whole %q", secrets, in, got, want)
		}
		for _, s := range secrets {
			if strings.Contains(want, s) {
				t.Fatalf("secret %q survives in %q (input %q)", s, want, in)
			}
		}
	}
}

func randString(r *rand.Rand, alphabet string, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return string(b)
}

func TestNilMaskerWriterForwards(t *testing.T) {
	var m *Masker
	var out bytes.Buffer
	w := m.Writer(&out)
	w.Write([]byte("abc"))
	w.Close()
	if out.String() != "abc" || m.String("x") != "x" {
		t.Fatal("nil masker changed data")
	}
}

func FuzzWriter(f *testing.F) {
	f.Add("token", "my token is token!", 3)
	f.Add("aa", "aaaaaaa", 1)
	f.Add("\xff\xfe", "\xff\xff\xfe\xfe", 2)
	f.Add("abc", "", 5)
	f.Add("{\n  key-line\n}", "only   key-line here", 2)
	f.Add("it's", "'it'\\''s'", 4)
	f.Fuzz(func(t *testing.T, secret, in string, chunk int) {
		if chunk <= 0 || chunk > 64 {
			chunk = 1
		}
		m := New([]string{secret, strings.ToUpper(secret)})
		whole := string(m.Bytes([]byte(in)))
		if got := streamed(m, []byte(in), chunk); got != whole {
			t.Fatalf("streamed %q != whole %q", got, whole)
		}
		if m.String(in) != whole {
			t.Fatalf("String differs from Bytes")
		}
		// Unmasked runs contain no secret, and a secret without '*' cannot span a replacement.
		if secret != "" && !strings.Contains(secret, "*") && strings.Contains(whole, secret) {
			t.Fatalf("secret %q survives in %q (input %q)", secret, whole, in)
		}
		// Nor does a line of a multi-line secret that is masked on its own.
		for _, l := range secretLines(secret) {
			if !strings.Contains(l, "*") && strings.Contains(whole, l) {
				t.Fatalf("line %q of secret %q survives in %q (input %q)", l, secret, whole, in)
			}
		}
	})
}

func BenchmarkWriterNoSecrets(b *testing.B) {
	w := New(nil).Writer(io.Discard)
	p := bytes.Repeat([]byte("x"), 64<<10)
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		w.Write(p)
	}
}

func BenchmarkWriterOneSecret(b *testing.B) {
	w := New([]string{"s3cr3t-value"}).Writer(io.Discard)
	p := bytes.Repeat([]byte("some ordinary log output line\n"), 2000)
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		w.Write(p)
	}
}
