package cli

import (
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/spf13/cobra"

	"github.com/playbookhq/playbook/pkg/playbook"
	"github.com/playbookhq/playbook/pkg/run"
)

type graphOptions struct {
	File   string
	Format string // mermaid or dot
}

func newGraphCmd(sys *System) *cobra.Command {
	o := &graphOptions{}
	cmd := &cobra.Command{
		Use:   "graph FILE [--format mermaid|dot]",
		Short: "Print the step graph of a playbook",
		Long: `graph prints the steps of a playbook as nodes and their needs as edges (fetch --> compile), in
Mermaid (the default; GitHub and GitLab render it in Markdown) or Graphviz DOT. Steps with an if are
drawn dashed and labelled with their condition. An invalid playbook prints its errors and exits 2.`,
		Example: `  playbook graph examples/playbooks/release.yaml
  playbook graph examples/playbooks/release.yaml --format dot | dot -Tsvg > release.svg`,
		Args: exactArgs(1, "one playbook file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.File = args[0]
			return runGraph(sys, o)
		},
	}
	cmd.Flags().StringVar(&o.Format, "format", "mermaid", "output format: mermaid or dot")
	return cmd
}

func runGraph(sys *System, o *graphOptions) error {
	if o.Format != "mermaid" && o.Format != "dot" {
		return usageErrorf("--format must be mermaid or dot, not %q", o.Format)
	}
	pb, err := loadPlaybook(sys, o.File)
	if err != nil {
		printLoadErrors(sys.ErrOut, err)
		return &ExitError{Code: run.ExitUsage}
	}
	printWarnings(sys.ErrOut, pb)
	if o.Format == "dot" {
		return writeDOT(sys.Out, pb)
	}
	return writeMermaid(sys.Out, pb)
}

// conditional reports whether a step has an if of its own.
func conditional(s *playbook.Step) bool { return s.If.Source() != "success()" }

// mermaidSafeID is what Mermaid's flowchart lexer takes as a node id: letters, digits and _, with single
// dashes inside (-- is an edge).
var mermaidSafeID = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(-[A-Za-z0-9_]+)*$`)

// mermaidReserved are words that break a flowchart when used as node ids, or as a part of one between
// dashes or underscores ("end" closes a subgraph).
var mermaidReserved = map[string]bool{
	"end": true, "graph": true, "subgraph": true, "flowchart": true, "style": true, "class": true,
	"classdef": true, "click": true, "linkstyle": true, "direction": true, "default": true,
}

func mermaidUsable(id string) bool {
	if !mermaidSafeID.MatchString(id) || strings.HasPrefix(id, "n_") {
		return false
	}
	for _, part := range strings.FieldsFunc(strings.ToLower(id), func(r rune) bool { return r == '-' || r == '_' }) {
		if mermaidReserved[part] {
			return false
		}
	}
	return true
}

// mermaidIDs gives every step a node id: its own id when Mermaid takes it as it is, else n_<position>
// (the label always shows the real id).
func mermaidIDs(pb *playbook.Playbook) map[string]string {
	ids := make(map[string]string, len(pb.Steps))
	used := map[string]bool{}
	for _, s := range pb.Steps {
		if mermaidUsable(s.ID) {
			ids[s.ID] = s.ID
			used[s.ID] = true
		}
	}
	for i, s := range pb.Steps {
		if _, ok := ids[s.ID]; !ok {
			id := fmt.Sprintf("n_%d", i+1)
			for used[id] {
				id += "_"
			}
			ids[s.ID], used[id] = id, true
		}
	}
	return ids
}

// mermaidText escapes text for a quoted Mermaid label (entity codes; # starts one).
func mermaidText(s string) string {
	r := strings.NewReplacer("#", "#35;", `"`, "#quot;", "<", "#lt;", ">", "#gt;", "\n", " ")
	return r.Replace(s)
}

func stepLabel(s *playbook.Step) string {
	if s.Name != s.ID {
		return s.ID + ": " + s.Name
	}
	return s.ID
}

func writeMermaid(w io.Writer, pb *playbook.Playbook) error {
	ids := mermaidIDs(pb)
	var b strings.Builder
	b.WriteString("flowchart TD\n")
	var cond []string
	for _, s := range pb.Order {
		label := mermaidText(stepLabel(s))
		if conditional(s) {
			fmt.Fprintf(&b, "    %s{{\"%s<br/>if: %s\"}}\n", ids[s.ID], label, mermaidText(s.If.Source()))
			cond = append(cond, ids[s.ID])
		} else {
			fmt.Fprintf(&b, "    %s[\"%s\"]\n", ids[s.ID], label)
		}
	}
	for _, s := range pb.Order {
		for _, n := range s.Needs {
			fmt.Fprintf(&b, "    %s --> %s\n", ids[n], ids[s.ID])
		}
	}
	if len(cond) > 0 {
		b.WriteString("    classDef conditional stroke-dasharray: 5 5\n")
		fmt.Fprintf(&b, "    class %s conditional\n", strings.Join(cond, ","))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// dotQuote quotes a string for DOT.
func dotQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

func writeDOT(w io.Writer, pb *playbook.Playbook) error {
	var b strings.Builder
	fmt.Fprintf(&b, "digraph %s {\n", dotQuote(pb.Name))
	b.WriteString("    rankdir=TB;\n    node [shape=box, style=rounded];\n")
	for _, s := range pb.Order {
		if conditional(s) {
			fmt.Fprintf(&b, "    %s [label=%s, style=\"rounded,dashed\"];\n", dotQuote(s.ID), dotQuote(stepLabel(s)+"\nif: "+s.If.Source()))
		} else {
			fmt.Fprintf(&b, "    %s [label=%s];\n", dotQuote(s.ID), dotQuote(stepLabel(s)))
		}
	}
	for _, s := range pb.Order {
		for _, n := range s.Needs {
			fmt.Fprintf(&b, "    %s -> %s;\n", dotQuote(n), dotQuote(s.ID))
		}
	}
	b.WriteString("}\n")
	_, err := io.WriteString(w, b.String())
	return err
}
