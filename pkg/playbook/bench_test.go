package playbook

import (
	"fmt"
	"strings"
	"testing"
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
