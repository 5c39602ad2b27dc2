package cli

import (
	"github.com/spf13/cobra"

	"github.com/playbookhq/playbook/pkg/playbook"
)

func newSchemaCmd(sys *System) *cobra.Command {
	return &cobra.Command{
		Use:   "schema",
		Short: "Print the JSON Schema of the playbook format, for editors",
		Long: `schema prints the JSON Schema (draft-07) of the playbook format. It is generated from the types the
loader decodes with, so it accepts what validate accepts (validate checks more: the step graph,
expressions, script files).

With the YAML extension of VS Code or any editor using yaml-language-server, save it and point to it
from the first line of a playbook:

  playbook schema > playbook.schema.json
  # yaml-language-server: $schema=./playbook.schema.json`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := sys.Out.Write(playbook.Schema())
			return err
		},
	}
}
