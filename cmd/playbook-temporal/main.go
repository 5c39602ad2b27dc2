// Command playbook-temporal is the playbook command line with the commands that need Temporal's SDK
// carried out: `worker`, `run --temporal` and `attach`. `playbook`, which does not link the SDK (its
// initialisation would slow every local run's start-up), hands those commands to this binary, found
// next to it or in PATH; `go install ./cmd/...` installs both. Every other command is playbook's.
package main

import (
	"os"

	"github.com/playbookhq/playbook/internal/cli"
	"github.com/playbookhq/playbook/internal/distributed"
)

func main() {
	sys := cli.OS()
	sys.Remote = distributed.Remote{}
	os.Exit(cli.Main(os.Args[1:], sys))
}
