// Package cli is the playbook command line: one file per command, each taking its I/O and dependencies
// from a System so that tests drive commands with buffers. Main is the only place errors become exit
// statuses.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// System is everything a command may touch outside its arguments. Tests build one with buffers.
type System struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
	// OutIsTerminal reports whether Out is a terminal; it turns on the live view and colour.
	OutIsTerminal bool
	// Getenv reads an environment variable (PLAYBOOK_DB, XDG_STATE_HOME, HOME, NO_COLOR, USER).
	Getenv func(string) string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Signals subscribes to the signals that stop a run: SIGINT, SIGTERM, SIGHUP and SIGQUIT. It returns
	// the channel and a function that stops the subscription. While subscribed, a write to a closed pipe
	// is an error (EPIPE) instead of killing the process, so that a runner whose terminal or reader has
	// gone still records its run. Nil means the command is never interrupted by signals (tests that do
	// not send any).
	Signals func() (<-chan os.Signal, func())
	// Remote carries out worker, run --temporal and attach; nil hands them to PluginName with Exec.
	Remote Remote
	// Exec replaces this process with the program name, given args; it returns only on failure, an
	// error wrapping errNoPlugin when the program is not installed. Nil: it cannot.
	Exec func(name string, args []string) error
}

// OS returns the real process environment: the standard streams, the OS environment and OS signals.
func OS() *System {
	return &System{
		In:            os.Stdin,
		Out:           os.Stdout,
		ErrOut:        os.Stderr,
		OutIsTerminal: term.IsTerminal(int(os.Stdout.Fd())),
		Getenv:        os.Getenv,
		Now:           time.Now,
		Signals: func() (<-chan os.Signal, func()) {
			// Capacity 2: a quick double Ctrl-C must not lose the second signal, which forces the stop.
			ch := make(chan os.Signal, 2)
			signal.Notify(ch, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
			// Caught rather than ignored: an ignored SIGPIPE would be inherited by every step (a
			// caught one is reset on exec), and `yes | head` in a step would then never end. Nobody
			// reads this channel; a full one drops the signal, which is all that is wanted.
			pipe := make(chan os.Signal, 1)
			signal.Notify(pipe, syscall.SIGPIPE)
			return ch, func() { signal.Stop(ch); signal.Stop(pipe) }
		},
		Exec: execSibling,
	}
}

func (s *System) now() time.Time {
	if s.Now == nil {
		return time.Now()
	}
	return s.Now()
}

func (s *System) getenv(k string) string {
	if s.Getenv == nil {
		return ""
	}
	return s.Getenv(k)
}

// globalOptions holds what the commands share: the --db flag of those that use the database.
type globalOptions struct {
	DB string // --db; empty means $PLAYBOOK_DB, then the XDG state folder

	args []string // the command line as given, for handing it to PluginName
}

// Main runs the playbook command line with args (without the program name) and returns the exit status.
func Main(args []string, sys *System) int {
	root, ran, g := newRootCmd(sys)
	g.args = args
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(context.Background())
	if err != nil && !*ran {
		// Cobra failed before any command ran: unknown command, bad flag, wrong number of arguments.
		var ue *UsageError
		if !errors.As(err, &ue) {
			err = &UsageError{Err: err}
		}
	}
	code := exitCode(err)
	if err != nil {
		printError(sys.ErrOut, err, cmd)
	}
	return code
}

// printError prints err on w; a usage error is followed by a pointer to the help of cmd, the command
// that refused the command line (the root when no command was recognised).
func printError(w io.Writer, err error, cmd *cobra.Command) {
	var ee *ExitError
	if errors.As(err, &ee) && ee.Err == nil {
		return
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "playbook: ") {
		msg = "playbook: " + msg
	}
	fmt.Fprintln(w, msg)
	var ue *UsageError
	if errors.As(err, &ue) {
		path := "playbook"
		if cmd != nil {
			path = cmd.CommandPath()
		}
		fmt.Fprintf(w, "Run '%s --help' for usage.\n", path)
	}
}

func newRootCmd(sys *System) (*cobra.Command, *bool, *globalOptions) {
	ran := new(bool)
	g := &globalOptions{}
	root := &cobra.Command{
		Use:   "playbook",
		Short: "Run multi-step operational workflows and keep an audit trail of every run",
		Long: `playbook runs the steps of a YAML playbook in parallel where their dependencies allow,
owns every child process (timeouts, cancellation, process groups, bounded output) and records
every run, step, exit status, timing and a bounded copy of the output in a local SQLite database.`,
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			*ran = true
			return nil
		},
	}
	root.SetIn(sys.In)
	root.SetOut(sys.Out)
	root.SetErr(sys.ErrOut)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return &UsageError{Err: err} })
	// --version prints what `playbook version` prints.
	root.Version = version()
	root.SetVersionTemplate(versionLine() + "\n")
	root.Flags().BoolP("version", "v", false, "print the version of playbook, as playbook version does")

	// The commands that open the database, and only they, take --db.
	withDB := []*cobra.Command{
		newRunCmd(sys, g),
		newRunsCmd(sys, g),
		newShowCmd(sys, g),
		newLogsCmd(sys, g),
		newRetryCmd(sys, g),
		newPruneCmd(sys, g),
		newWorkerCmd(sys, g),
		newAttachCmd(sys, g),
	}
	for _, c := range withDB {
		addDBFlag(c, g)
	}
	root.AddCommand(withDB...)
	root.AddCommand(
		newVersionCmd(sys),
		newValidateCmd(sys),
		newGraphCmd(sys),
		newSchemaCmd(sys),
		newEngineCmd(sys),
	)
	addCompletions(root, sys, g)
	return root, ran, g
}

// addDBFlag gives cmd the --db flag: only the commands that open the database have it.
func addDBFlag(cmd *cobra.Command, g *globalOptions) {
	cmd.Flags().StringVar(&g.DB, "db", "", "database `FILE` (default $PLAYBOOK_DB, else $XDG_STATE_HOME/playbook/playbook.db)")
}

// exactArgs is cobra.ExactArgs with a usage error, so that a wrong count exits 2 with a clear message.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageErrorf("%s takes %s (got %d argument(s))", cmd.CommandPath(), what, len(args))
		}
		return nil
	}
}

// rangeArgs accepts between min and max arguments, with a usage error otherwise.
func rangeArgs(min, max int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < min || len(args) > max {
			return usageErrorf("%s takes %s (got %d argument(s))", cmd.CommandPath(), what, len(args))
		}
		return nil
	}
}
