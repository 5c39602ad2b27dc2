// Command playbook runs multi-step operational workflows described in YAML and records every run in a
// local SQLite database. See the README for the playbook format and the commands.
package main

import (
	"os"

	"github.com/playbookhq/playbook/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], cli.OS()))
}
