package cli

import (
	"errors"

	"github.com/spf13/cobra"
)

// STUB (foundation): replaced by the issue that owns the command.
func newSchemaCmd(sys *System) *cobra.Command {
	return &cobra.Command{
		Use:    "schema",
		Hidden: true,
		RunE:   func(*cobra.Command, []string) error { return errors.New("schema: not implemented yet") },
	}
}
