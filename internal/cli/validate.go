package cli

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/playbookhq/playbook/pkg/playbook"
	"github.com/playbookhq/playbook/pkg/run"
)

func newValidateCmd(sys *System) *cobra.Command {
	return &cobra.Command{
		Use:   "validate FILE...",
		Short: "Check playbooks without running anything",
		Long: `validate loads each playbook as run would, without running anything: the YAML, every key, the
step graph (unknown needs, duplicate ids, cycles) and every expression. It prints every problem of every
file as file:line:col: message on stderr, and warnings as file:line:col: warning: message. Valid files
are listed on stdout as "FILE: ok (N steps)". A FILE of - reads the playbook from stdin.

Exit status: 0 when every file is valid (warnings do not count), 2 otherwise.`,
		Example: `  playbook validate examples/playbooks/*.yaml`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErrorf("%s takes one or more playbook files", cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error { return runValidate(sys, args) },
	}
}

func runValidate(sys *System, files []string) error {
	collectLess(sys)
	valid := true
	for _, f := range files {
		pb, err := loadPlaybook(sys, f)
		if err != nil {
			valid = false
			printLoadErrors(sys.ErrOut, err)
			continue
		}
		printWarnings(sys.ErrOut, pb)
		steps := "steps"
		if len(pb.Steps) == 1 {
			steps = "step"
		}
		fmt.Fprintf(sys.Out, "%s: ok (%d %s)\n", f, len(pb.Steps), steps)
	}
	if !valid {
		return &ExitError{Code: run.ExitUsage}
	}
	return nil
}

// loadPlaybook loads a playbook file, or stdin when the name is "-".
func loadPlaybook(sys *System, file string) (*playbook.Playbook, error) {
	if file != "-" {
		return playbook.Load(file)
	}
	in := sys.In
	if in == nil {
		return nil, playbook.ErrorList{{File: "<stdin>", Msg: "no standard input"}}
	}
	data, err := io.ReadAll(io.LimitReader(in, playbook.MaxFileSize+1))
	if err != nil {
		return nil, playbook.ErrorList{{File: "<stdin>", Msg: "cannot read: " + err.Error()}}
	}
	return playbook.Parse("<stdin>", data)
}

// printLoadErrors prints every error of a playbook on its own line.
func printLoadErrors(w io.Writer, err error) {
	var list playbook.ErrorList
	if errors.As(err, &list) {
		for _, e := range list {
			fmt.Fprintln(w, e.Error())
		}
		return
	}
	fmt.Fprintln(w, err)
}

func printWarnings(w io.Writer, pb *playbook.Playbook) {
	for _, e := range pb.Warnings {
		fmt.Fprintf(w, "%s:%d:%d: warning: %s\n", e.File, e.Line, e.Col, e.Msg)
	}
}
