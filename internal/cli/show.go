package cli

import (
	"errors"

	"github.com/spf13/cobra"
)

// STUB (foundation): replaced by the issue that owns the command.
func newShowCmd(sys *System, g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:    "show",
		Hidden: true,
		RunE:   func(*cobra.Command, []string) error { return errors.New("show: not implemented yet") },
	}
}
