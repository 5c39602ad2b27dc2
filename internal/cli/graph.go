package cli

import (
	"errors"

	"github.com/spf13/cobra"
)

// STUB (foundation): replaced by the issue that owns the command.
func newGraphCmd(sys *System) *cobra.Command {
	return &cobra.Command{
		Use:    "graph",
		Hidden: true,
		RunE:   func(*cobra.Command, []string) error { return errors.New("graph: not implemented yet") },
	}
}
