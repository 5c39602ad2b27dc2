package playbook

import (
	"bytes"
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// firstError parses y and returns its first error, failing when y is valid.
func firstError(t *testing.T, y string) *Error {
	t.Helper()
	return parseErr(t, y)[0]
}

func wantError(t *testing.T, y string, line, col int, msg string) {
	t.Helper()
	list := parseErr(t, y)
	for _, e := range list {
		if e.Line == line && e.Col == col && strings.Contains(e.Msg, msg) {
			return
		}
	}
	t.Errorf("no error at %d:%d containing %q; got:\n%v", line, col, msg, list)
}

// TestUnknownKeys: a typo is an error at every level, including inside values that have
// their own decoding (params entries, the string-or-list needs, nested retry and aws mappings). yaml v3's
// KnownFields would miss the ones inside a custom UnmarshalYAML; this loader checks every mapping itself.
func TestUnknownKeys(t *testing.T) {
	cases := []struct {
		name, y   string
		line, col int
		msg       string
	}{
		{"top level", "version: 1\nname: x\nstpes: []\n", 3, 1, `unknown key "stpes" at the top level; did you mean "steps"?`},
		{"step", "version: 1\nname: x\nsteps:\n  - id: a\n    rnu: echo\n", 5, 5, `unknown key "rnu" in step "a"; did you mean "run"?`},
		{"retry (nested mapping)", "version: 1\nname: x\nsteps:\n  - id: a\n    run: x\n    retry: {attempts: 2, dealy: 1s}\n", 6, 26, `unknown key "dealy" in retry of step "a"; did you mean "delay"?`},
		{"param (custom decoder)", "version: 1\nname: x\nparams:\n  p:\n    tpye: int\nsteps:\n  - {id: a, run: x}\n", 5, 5, `unknown key "tpye" in param "p"; did you mean "type"?`},
		{"aws", "version: 1\nname: x\nsteps:\n  - id: a\n    aws: {service: s3, operation: ls, regon: x}\n", 5, 39, `unknown key "regon" in aws of step "a"; did you mean "region"?`},
		{"defaults", "version: 1\nname: x\ndefaults: {timeuot: 1m}\nsteps:\n  - {id: a, run: x}\n", 3, 12, `unknown key "timeuot" in defaults; did you mean "timeout"?`},
		{"retry in defaults", "version: 1\nname: x\ndefaults:\n  retry: {attempts: 2, backof: 2}\nsteps:\n  - {id: a, run: x}\n", 4, 24, `unknown key "backof" in retry of defaults; did you mean "backoff"?`},
		{"no suggestion", "version: 1\nname: x\nsteps:\n  - {id: a, run: x, zzzzzz: 1}\n", 4, 21, `unknown key "zzzzzz" in step "a"; allowed keys: id, name, needs, if, run, exec`},
		{"key before id", "version: 1\nname: x\nsteps:\n  - rnu: x\n    id: late\n", 4, 5, `unknown key "rnu" in step "late"`},
		{"step without id", "version: 1\nname: x\nsteps:\n  - {id: a, run: x}\n  - {run: x, nedds: [a]}\n", 5, 14, `unknown key "nedds" in step 2; did you mean "needs"?`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { wantError(t, c.y, c.line, c.col, c.msg) })
	}
}

// TestBoolStrict: bool fields take true and false only, not the yes/no/on/off of YAML 1.1 that yaml v3
// still accepts for Go bools.
func TestBoolStrict(t *testing.T) {
	for _, v := range []string{"yes", "no", "on", "off", "y", "n", "True", "FALSE", "1", "0", `"true"`} {
		y := "version: 1\nname: x\nsteps:\n  - id: a\n    run: x\n    continue_on_error: " + v + "\n"
		e := firstError(t, y)
		if e.Line != 6 || e.Col != 24 || !strings.Contains(e.Msg, "must be true or false") || !strings.Contains(e.Msg, "write true or false") {
			t.Errorf("%s: %v", v, e)
		}
	}
	for v, want := range map[string]bool{"true": true, "false": false} {
		pb := mustParse(t, "version: 1\nname: x\nfail_fast: "+v+"\nsteps:\n  - id: a\n    run: x\n    continue_on_error: "+v+"\n")
		if pb.Steps[0].ContinueOnError != want || pb.FailFast != want {
			t.Errorf("%s: ContinueOnError %v, FailFast %v", v, pb.Steps[0].ContinueOnError, pb.FailFast)
		}
	}
	if pb := mustParse(t, "version: 1\nname: x\nsteps:\n  - {id: a, run: x}\n"); !pb.FailFast {
		t.Errorf("fail_fast does not default to true")
	}
}

// TestEnvKeepsText: env values are the text written, never a number or bool YAML read into them: 1.10
// stays 1.10 (never 1.1), NO stays NO.
func TestEnvKeepsText(t *testing.T) {
	y := "version: 1\nname: x\nenv:\n  VERSION: 1.10\n  COUNTRY: NO\n  ON: on\n  PORT: 010\n  HEX: 0x1F\n  EXP: 1e3\n  T: true\n  Q: \"1.10\"\n  E: \"\"\n  DAY: 2026-01-31\nsteps:\n  - id: a\n    exec: [echo, 1.10, 007]\n    env: {V: 2.50}\n"
	pb := mustParse(t, y)
	want := map[string]string{"VERSION": "1.10", "COUNTRY": "NO", "ON": "on", "PORT": "010", "HEX": "0x1F", "EXP": "1e3", "T": "true", "Q": "1.10", "E": "", "DAY": "2026-01-31"}
	st := &State{}
	for _, e := range pb.Env {
		got, err := e.Value.Render(st)
		if err != nil || got != want[e.Name] {
			t.Errorf("env %s = %q, %v; want %q", e.Name, got, err, want[e.Name])
		}
		if strings.Contains(got, "1.1") && got != "1.10" {
			t.Errorf("env %s = %q", e.Name, got)
		}
	}
	if got := pb.Steps[0].Env[0].Value.Raw(); got != "2.50" {
		t.Errorf("step env V = %q", got)
	}
	if a, b := pb.Steps[0].Exec[1].Raw(), pb.Steps[0].Exec[2].Raw(); a != "1.10" || b != "007" {
		t.Errorf("exec args %q %q", a, b)
	}
	// An empty value is ambiguous: it must be written "".
	wantError(t, "version: 1\nname: x\nenv:\n  A:\nsteps:\n  - {id: a, run: x}\n", 4, 5, `env "A" has no value; write "" for an empty string`)
}

// TestDuplicateKeys: a second key of the same name is an error naming both lines.
func TestDuplicateKeys(t *testing.T) {
	wantError(t, "version: 1\nname: x\nsteps:\n  - id: a\n    run: one\n    run: two\n", 6, 5, `key "run" appears twice in step "a" (first at line 5)`)
	wantError(t, "version: 1\nname: x\nenv:\n  A: 1\n  A: 2\nsteps:\n  - {id: a, run: x}\n", 5, 3, `env "A" is defined twice at the top level (first at line 4)`)
	wantError(t, "version: 1\nname: x\nsteps:\n  - {id: a, run: x}\n  - {id: a, run: y}\n", 5, 10, `duplicate step id "a": also used by the step at line 4`)
}

// TestAliasBomb: a billion-laughs document is refused quickly and with bounded memory,
// both where the format forbids aliases' targets and where it allows them.
func TestAliasBomb(t *testing.T) {
	bomb := func(where string) []byte {
		var b bytes.Buffer
		b.WriteString("version: 1\nname: bomb\nsteps:\n  - id: a\n    run: x\n    env: &a0\n")
		for i := range 1000 {
			fmt.Fprintf(&b, "      K%d: v\n", i)
		}
		b.WriteString("  - id: b\n    run: x\n    exec: &l0 [a, b, c, d, e, f, g, h, i]\n")
		for i := 1; i <= 9; i++ {
			fmt.Fprintf(&b, "  - id: s%d\n    run: x\n    needs: &l%d [%s]\n", i, i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*l%d, ", i-1), 9), ", "))
		}
		b.WriteString(where)
		return b.Bytes()
	}
	for name, tail := range map[string]string{
		"lists of lists": "  - id: z\n    exec: *l9\n",
		"many env":       strings.Repeat("  - {run: x, env: *a0}\n", 1000),
	} {
		t.Run(name, func(t *testing.T) {
			data := bomb(tail)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			_, err := Parse("bomb.yaml", data)
			runtime.ReadMemStats(&after)
			if err == nil {
				t.Fatal("the bomb loaded")
			}
			if name == "many env" && !strings.Contains(err.Error(), "too many YAML aliases") {
				t.Errorf("the alias budget did not stop it: %.300s", err)
			}
			// The bound that matters is memory (the time is BenchmarkAliasBomb's to measure).
			if grown := after.TotalAlloc - before.TotalAlloc; grown > 200<<20 {
				t.Errorf("allocated %d MiB", grown>>20)
			}
		})
	}
}

// TestLimits: a file too large, several documents in one file (the second would be ignored) and deep
// nesting are refused.
func TestLimits(t *testing.T) {
	t.Run("2 MiB file", func(t *testing.T) {
		data := append([]byte("version: 1\nname: big\nsteps:\n  - {id: a, run: x}\n# "), bytes.Repeat([]byte("x"), 2<<20)...)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := Parse("big.yaml", data)
		runtime.ReadMemStats(&after)
		if err == nil || !strings.Contains(err.Error(), "playbook too large") {
			t.Fatalf("got %v", err)
		}
		// Refused before parsing: parsing a file allocates several times its size, refusing it next
		// to nothing.
		if grown := after.TotalAlloc - before.TotalAlloc; grown > 64<<10 {
			t.Errorf("refusing allocated %d bytes: the file was parsed before being refused", grown)
		}
	})
	t.Run("exactly 1 MiB is accepted", func(t *testing.T) {
		head := "version: 1\nname: big\nsteps:\n  - {id: a, run: x}\n# "
		data := []byte(head + strings.Repeat("x", MaxFileSize-len(head)-1) + "\n")
		if _, err := Parse("big.yaml", data); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("two documents", func(t *testing.T) {
		wantError(t, "version: 1\nname: a\nsteps:\n  - {id: a, run: x}\n---\nversion: 1\n", 5, 1, "multiple YAML documents")
		wantError(t, "---\nversion: 1\nname: a\nsteps:\n  - {id: a, run: x}\n---\n[unclosed\n", 6, 1, "multiple YAML documents")
		mustParse(t, "---\nversion: 1\nname: a\nsteps:\n  - {id: a, run: x}\n...\n")
	})
	t.Run("20000 nested [", func(t *testing.T) {
		e := firstError(t, "version: 1\nname: x\nsteps: "+strings.Repeat("[", 20000)+"\n")
		if !strings.Contains(e.Msg, "nested too deeply") { // BenchmarkNested20000 gives the time
			t.Errorf("got %v", e)
		}
	})
	t.Run("20000 nested {", func(t *testing.T) {
		e := firstError(t, "version: 1\nname: x\nsteps: "+strings.Repeat("{a: ", 20000)+"\n")
		if !strings.Contains(e.Msg, "nested too deeply") {
			t.Errorf("got %v", e)
		}
	})
}

// TestEncodings: tabs, byte order marks, CRLF, empty files and bytes that are not UTF-8.
func TestEncodings(t *testing.T) {
	wantError(t, "version: 1\nname: x\nsteps:\n  - id: a\n\trun: x\n", 5, 1, "tab character in indentation")
	wantError(t, "", 1, 1, "empty playbook")
	wantError(t, "# only a comment\n", 1, 1, "empty playbook")
	wantError(t, "version: 1\nname: caf\xe9\nsteps: []\n", 2, 10, "invalid UTF-8 (byte 0xe9)")
	wantError(t, "version: 1\nname: x\x00\n", 2, 8, "NUL byte")
	wantError(t, "\xff\xfev\x00", 1, 1, "UTF-16")
	// A UTF-8 byte order mark is allowed and does not shift columns.
	wantError(t, "\ufeffversion: 1\nname: x\nsteps:\n  - {id: a, rnu: x}\n", 4, 13, `unknown key "rnu"`)
	// CRLF line ends: positions are right, and block scalars get \n line ends.
	pb := mustParse(t, "version: 1\r\nname: x\r\nsteps:\r\n  - id: a\r\n    run: |\r\n      echo a\r\n      echo b\r\n")
	if got := pb.Steps[0].Run.Raw(); got != "echo a\necho b\n" {
		t.Errorf("CRLF run = %q", got)
	}
	wantError(t, "version: 1\r\nname: x\r\nsteps:\r\n  - id: a\r\n    run: |\r\n      echo a\r\n      echo ${{ params.p }}\r\n", 7, 23, `unknown param "p"`)
	// Tabs inside a block scalar's content are content, not indentation.
	pb = mustParse(t, "version: 1\nname: x\nsteps:\n  - id: a\n    run: |\n      printf 'a\tb'\n      \techo tab-indented\n")
	if !strings.Contains(pb.Steps[0].Run.Raw(), "\techo") {
		t.Errorf("tab lost: %q", pb.Steps[0].Run.Raw())
	}
}

// TestErrorsAreAllReportedInOrder: every problem in a file, sorted by position.
func TestErrorsAreAllReportedInOrder(t *testing.T) {
	y := "version: 2\nname: bad name\nsteps:\n  - id: a\n    run: x\n    timeout: 5\n  - id: b\n    needs: [zz]\n    run: x\n    stop_signal: SIGNOPE\n"
	list := parseErr(t, y)
	if len(list) != 5 {
		t.Fatalf("%d errors, want 5:\n%v", len(list), list)
	}
	for i := 1; i < len(list); i++ {
		a, b := list[i-1], list[i]
		if a.Line > b.Line || (a.Line == b.Line && a.Col > b.Col) {
			t.Errorf("not in order: %v before %v", a, b)
		}
	}
}

// TestYAMLErrorPositions: the two cases of issue 16, where yaml v3's own line pointed elsewhere (6:3
// for a [ opened at 7:12, 3:1 for a - id mis-indented at 6:2), and a mistake far below the line of
// the mapping yaml v3 was reading.
func TestYAMLErrorPositions(t *testing.T) {
	wantError(t, "version: 1\nname: deploy\nsteps:\n  - id: build\n    run: make\n  - id: test\n    needs: [build\n    run: make test\n",
		7, 12, "this [ opens a list that is not closed: end it with ]")
	wantError(t, "version: 1\nname: deploy\nsteps:\n  - id: build\n    run: make\n - id: test\n    run: make test\n",
		6, 2, "a list item (-) where a key was expected")
	var b strings.Builder
	b.WriteString("version: 1\nname: far\nsteps:\n")
	for i := range 300 {
		fmt.Fprintf(&b, "  - id: s%d\n    run: echo %d\n", i, i)
	}
	b.WriteString("  - id: last\n   run: echo last\n")
	wantError(t, b.String(), 605, 4, `key "run" is not indented like the key above it (line 604, column 5)`)
}
