package cli

import (
	"errors"

	"github.com/spf13/cobra"
)

// STUB (foundation): replaced by the issue that owns the command.
func newLogsCmd(sys *System, g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:    "logs",
		Hidden: true,
		RunE:   func(*cobra.Command, []string) error { return errors.New("logs: not implemented yet") },
	}
}
