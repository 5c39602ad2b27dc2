package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Version is set at build time with -ldflags "-X github.com/playbookhq/playbook/internal/cli.Version=v1.2.3";
// otherwise it comes from the module build information.
var Version = ""

func version() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// versionLine is what `playbook version` and `playbook --version` print.
func versionLine() string {
	return fmt.Sprintf("playbook %s (%s, %s/%s)", version(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

func newVersionCmd(sys *System) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of playbook",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := fmt.Fprintln(sys.Out, versionLine())
			return err
		},
	}
}
