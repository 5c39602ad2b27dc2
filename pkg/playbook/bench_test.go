package playbook

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// bigPlaybook generates a playbook of n steps shaped like a real one grown large, compact enough that
// 10,000 steps fit under MaxFileSize: each step needs one to three earlier steps, every fifth has an if
// reading a step it needs and a param, every eleventh an if calling failure(), every third a run with
// ${{ }} over a param and a needed step's output, the others a literal command.
func bigPlaybook(n int) []byte {
	var b strings.Builder
	b.WriteString("version: 1\nname: big\nparams:\n  target: {default: staging, enum: [staging, prod]}\n  count: {type: int, default: 3}\nenv:\n  REGION: eu-west-1\nsteps:\n")
	for i := range n {
		fmt.Fprintf(&b, "- id: s%d\n", i)
		if i > 0 {
			needs := []string{fmt.Sprintf("s%d", i-1)}
			if i > 10 {
				needs = append(needs, fmt.Sprintf("s%d", i-10))
			}
			if i > 100 && i%7 == 0 {
				needs = append(needs, fmt.Sprintf("s%d", i/2))
			}
			fmt.Fprintf(&b, "  needs: [%s]\n", strings.Join(needs, ","))
		}
		switch {
		case i > 0 && i%5 == 0:
			fmt.Fprintf(&b, "  if: steps.s%d.exit_code == 0 && params.count > %d\n", i-1, i%4)
		case i%11 == 0:
			b.WriteString("  if: failure()\n")
		}
		if i > 0 && i%3 == 0 {
			fmt.Fprintf(&b, "  run: ./x ${{ params.target }} ${{ steps.s%d.outputs.t }}\n", i-1)
		} else {
			fmt.Fprintf(&b, "  run: echo %d\n", i)
		}
	}
	return []byte(b.String())
}

func BenchmarkParse10000Steps(b *testing.B) {
	data := bigPlaybook(10000)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		pb, err := Parse("big.yaml", data)
		if err != nil {
			b.Fatal(err)
		}
		if len(pb.Order) != 10000 {
			b.Fatalf("order has %d steps", len(pb.Order))
		}
	}
}

// hangGuard is the time limit of one fuzz input (normally well under a millisecond): long enough for a
// loaded CI machine and the race detector, so that it only ever catches a hang. How fast inputs go is
// measured by the benchmarks below, never by a test.
const hangGuard = 30 * time.Second

// BenchmarkLongChain: a 10,000-step chain (10,000 levels) and the same with a 10,000-step cycle.
func BenchmarkLongChain(b *testing.B) {
	var s strings.Builder
	s.WriteString("version: 1\nname: chain\nsteps:\n")
	for i := range 10000 {
		if i == 0 {
			s.WriteString("- {id: s0, run: x}\n")
			continue
		}
		fmt.Fprintf(&s, "- {id: s%d, needs: s%d, run: x, if: steps.s0.exit_code == 0}\n", i, i-1)
	}
	chain := []byte(s.String())
	cycle := []byte(strings.Replace(s.String(), "- {id: s0, run: x}", "- {id: s0, needs: s9999, run: x}", 1))
	b.Run("chain", func(b *testing.B) {
		b.SetBytes(int64(len(chain)))
		for b.Loop() {
			if _, err := Parse("chain.yaml", chain); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cycle", func(b *testing.B) {
		for b.Loop() {
			if _, err := Parse("cycle.yaml", cycle); err == nil {
				b.Fatal("the cycle loaded")
			}
		}
	})
}

// BenchmarkAliasBomb: how long refusing a billion-laughs document takes, and what it allocates (the
// test TestAliasBomb bounds the memory).
func BenchmarkAliasBomb(b *testing.B) {
	var s strings.Builder
	s.WriteString("version: 1\nname: bomb\nsteps:\n  - id: a\n    run: x\n    env: &a0\n")
	for i := range 1000 {
		fmt.Fprintf(&s, "      K%d: v\n", i)
	}
	s.WriteString(strings.Repeat("  - {run: x, env: *a0}\n", 1000))
	data := []byte(s.String())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse("bomb.yaml", data); err == nil {
			b.Fatal("the bomb loaded")
		}
	}
}

// BenchmarkRefuseTooLarge: a 2 MiB playbook is refused before parsing (TestLimits checks it allocates
// nothing to speak of).
func BenchmarkRefuseTooLarge(b *testing.B) {
	data := []byte("version: 1\nname: big\nsteps:\n  - {id: a, run: x}\n# " + strings.Repeat("x", 2<<20))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse("big.yaml", data); err == nil {
			b.Fatal("loaded")
		}
	}
}

// BenchmarkNested20000: 20,000 nested flow sequences are refused as nested too deeply.
func BenchmarkNested20000(b *testing.B) {
	data := []byte("version: 1\nname: x\nsteps: " + strings.Repeat("[", 20000) + "\n")
	for b.Loop() {
		if _, err := Parse("deep.yaml", data); err == nil {
			b.Fatal("loaded")
		}
	}
}
