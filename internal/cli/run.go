package cli

import (
	"errors"

	"github.com/spf13/cobra"
)

// STUB (foundation): replaced by the issue that owns the command.
func newRunCmd(sys *System, g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:    "run",
		Hidden: true,
		RunE:   func(*cobra.Command, []string) error { return errors.New("run: not implemented yet") },
	}
}
