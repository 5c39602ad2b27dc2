package cli

import (
	"errors"

	"github.com/spf13/cobra"
)

// STUB (foundation): replaced by the issue that owns the command.
func newValidateCmd(sys *System) *cobra.Command {
	return &cobra.Command{
		Use:    "validate",
		Hidden: true,
		RunE:   func(*cobra.Command, []string) error { return errors.New("validate: not implemented yet") },
	}
}
