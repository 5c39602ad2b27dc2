package cli

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/playbookhq/playbook/internal/store"
	"github.com/playbookhq/playbook/pkg/playbook"
	"github.com/playbookhq/playbook/pkg/run"
)

// Shell completion: cobra's `completion bash|zsh|fish|powershell` prints the script, which calls the
// hidden `__complete` command with the words typed so far; the functions here give its answers. A
// completion never fails loudly: whatever cannot be read (a missing database, a playbook that does
// not load) just completes nothing.

// completionRuns is how many of the newest runs a RUN argument offers.
const completionRuns = 50

// completionWait bounds a completion's reading of the database, so that a locked or slow database
// never hangs the shell.
const completionWait = 2 * time.Second

// addCompletions gives the commands under root their argument and flag completions. A command or flag
// that is not there is left alone.
func addCompletions(root *cobra.Command, sys *System, g *globalOptions) {
	files := func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return []cobra.Completion{"yaml", "yml"}, cobra.ShellCompDirectiveFilterFileExt
	}
	firstFile := func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return files(cmd, args, toComplete)
	}
	firstRun := func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return completeRuns(cmd, sys, g, toComplete)
	}
	fixed := func(cmd *cobra.Command, flag string, choices ...string) {
		if cmd.Flags().Lookup(flag) != nil {
			_ = cmd.RegisterFlagCompletionFunc(flag, cobra.FixedCompletions(choices, cobra.ShellCompDirectiveNoFileComp))
		}
	}
	flag := func(cmd *cobra.Command, flag string, f cobra.CompletionFunc) {
		if cmd.Flags().Lookup(flag) != nil {
			_ = cmd.RegisterFlagCompletionFunc(flag, f)
		}
	}
	dirs := func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return nil, cobra.ShellCompDirectiveFilterDirs
	}

	for _, cmd := range root.Commands() {
		fixed(cmd, "output", "text", "json")
		switch cmd.Name() {
		case "run":
			cmd.ValidArgsFunction = firstFile
			flag(cmd, "param", func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
				if len(args) == 0 {
					return nil, cobra.ShellCompDirectiveNoFileComp
				}
				pb, err := playbook.Load(args[0])
				if err != nil {
					return nil, cobra.ShellCompDirectiveNoFileComp
				}
				return completeParam(pb, toComplete)
			})
			flag(cmd, "log-dir", dirs)
		case "graph":
			cmd.ValidArgsFunction = firstFile
			fixed(cmd, "format", "mermaid", "dot")
		case "validate":
			cmd.ValidArgsFunction = files
		case "show", "attach":
			cmd.ValidArgsFunction = firstRun
		case "retry":
			cmd.ValidArgsFunction = firstRun
			flag(cmd, "param", func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
				if len(args) == 0 {
					return nil, cobra.ShellCompDirectiveNoFileComp
				}
				var file string
				readRun(cmd, sys, g, func(ctx context.Context, st *store.Store) {
					if id, err := st.ResolveRun(ctx, args[0]); err == nil {
						if r, err := st.Run(ctx, id); err == nil {
							file = r.File
						}
					}
				})
				pb, err := playbook.Load(file)
				if file == "" || err != nil {
					return nil, cobra.ShellCompDirectiveNoFileComp
				}
				return completeParam(pb, toComplete)
			})
			flag(cmd, "log-dir", dirs)
		case "logs":
			cmd.ValidArgsFunction = func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
				switch len(args) {
				case 0:
					return completeRuns(cmd, sys, g, toComplete)
				case 1:
					return completeSteps(cmd, sys, g, args[0], toComplete)
				}
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
		case "runs":
			cmd.ValidArgsFunction = cobra.NoFileCompletions
			var statuses []string
			for _, s := range []run.Status{run.StatusRunning, run.StatusSucceeded, run.StatusFailed, run.StatusTimedOut,
				run.StatusCancelled, run.StatusInterrupted, run.StatusDetached} {
				statuses = append(statuses, string(s))
			}
			fixed(cmd, "status", statuses...)
		case "worker":
			cmd.ValidArgsFunction = cobra.NoFileCompletions
			flag(cmd, "dir", dirs)
		case "completion", "help":
			// cobra's own
		default:
			if cmd.ValidArgsFunction == nil {
				cmd.ValidArgsFunction = cobra.NoFileCompletions
			}
		}
	}
}

// readRun opens the database for a completion, strictly read-only (see openForCompletion), and
// hands it to read; nothing happens when it cannot be opened.
func readRun(cmd *cobra.Command, sys *System, g *globalOptions, read func(ctx context.Context, st *store.Store)) {
	ctx, cancel := context.WithTimeout(cmd.Context(), completionWait)
	defer cancel()
	st := openForCompletion(ctx, cmd, sys, g)
	if st == nil {
		return
	}
	defer st.Close()
	read(ctx, st)
}

// openForCompletion opens the database the command would use (its --db, else $PLAYBOOK_DB, else the
// XDG state folder) read-only whatever this user may do to it: no folder or file is created, no
// migration and no crash recovery run (a shell pressing TAB must not mark runs interrupted nor wait
// for a write lock). nil when there is no database, or it cannot be read.
func openForCompletion(ctx context.Context, cmd *cobra.Command, sys *System, g *globalOptions) *store.Store {
	path := g.DB
	if f := cmd.Flag("db"); f != nil && f.Value.String() != "" {
		path = f.Value.String()
	}
	if path == "" {
		p, err := store.DefaultPath(sys.getenv)
		if err != nil {
			return nil
		}
		path = p
	}
	st, err := store.OpenForReading(ctx, path, store.Options{ReadOnly: true})
	if err != nil {
		return nil
	}
	return st
}

// completeRuns offers the newest runs, newest first, each with its playbook, status and start as the
// description. The 12-character prefix the output shows is offered, or the full id once more than
// that has been typed. A prefix matching none of the newest runs is looked up among all of them.
func completeRuns(cmd *cobra.Command, sys *System, g *globalOptions, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	var out []cobra.Completion
	readRun(cmd, sys, g, func(ctx context.Context, st *store.Store) {
		runs, err := st.ListRuns(ctx, store.RunFilter{Limit: completionRuns})
		if err != nil {
			return
		}
		var matched []*run.Record
		for _, r := range runs {
			if strings.HasPrefix(r.ID, toComplete) {
				matched = append(matched, r)
			}
		}
		if len(matched) == 0 && toComplete != "" {
			var ids []string
			id, err := st.ResolveRun(ctx, toComplete)
			var amb *store.AmbiguousRunError
			switch {
			case err == nil:
				ids = []string{id}
			case errors.As(err, &amb):
				ids = amb.Candidates
			}
			for _, id := range ids {
				if r, err := st.Run(ctx, id); err == nil {
					matched = append(matched, r)
				}
			}
		}
		for _, r := range matched {
			id := idPrefix(r.ID)
			if len(toComplete) >= len(id) {
				id = r.ID
			}
			desc := r.Playbook + ", " + statusWords(r.Status)
			if !r.StartedAt.IsZero() {
				desc += ", " + r.StartedAt.Local().Format("2006-01-02 15:04")
			}
			out = append(out, cobra.CompletionWithDesc(id, desc))
		}
	})
	return out, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveKeepOrder
}

// completeSteps offers the steps of a run, in the playbook's order, with their status.
func completeSteps(cmd *cobra.Command, sys *System, g *globalOptions, ref, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	var out []cobra.Completion
	readRun(cmd, sys, g, func(ctx context.Context, st *store.Store) {
		id, err := st.ResolveRun(ctx, ref)
		if err != nil {
			return
		}
		d, err := st.RunDetail(ctx, id)
		if err != nil {
			return
		}
		for _, s := range d.Steps {
			if strings.HasPrefix(s.StepID, toComplete) {
				out = append(out, cobra.CompletionWithDesc(s.StepID, statusWords(s.Status)))
			}
		}
	})
	return out, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveKeepOrder
}

// completeParam completes a -p value: a param name followed by "=" (no space after it, the value
// comes next), then, after "name=", the values an enum (or a bool) allows.
func completeParam(pb *playbook.Playbook, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	name, value, named := strings.Cut(toComplete, "=")
	var out []cobra.Completion
	if !named {
		for _, p := range pb.Params {
			if strings.HasPrefix(p.Name, name) {
				out = append(out, cobra.CompletionWithDesc(p.Name+"=", paramDescription(p)))
			}
		}
		return out, cobra.ShellCompDirectiveNoSpace | cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveKeepOrder
	}
	for _, p := range pb.Params {
		if p.Name != name {
			continue
		}
		choices := p.Enum
		if len(choices) == 0 && p.Type == playbook.ParamBool {
			choices = []any{true, false}
		}
		for _, c := range choices {
			if t := playbook.ParamText(c); strings.HasPrefix(t, value) {
				out = append(out, name+"="+t)
			}
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveKeepOrder
}

// paramDescription is what a completion shows beside a param's name: its description, else its type,
// and whether it is required or secret.
func paramDescription(p *playbook.Param) string {
	desc := p.Description
	if desc == "" {
		desc = string(p.Type)
		if desc == "" {
			desc = string(playbook.ParamString)
		}
	}
	desc = firstLine(desc)
	var notes []string
	if p.Required && p.Default == nil {
		notes = append(notes, "required")
	}
	if p.Secret {
		notes = append(notes, "secret")
	}
	if len(notes) > 0 {
		desc += " (" + strings.Join(notes, ", ") + ")"
	}
	return desc
}

// statusWords is a status as words: timed_out is "timed out".
func statusWords(s run.Status) string { return strings.ReplaceAll(string(s), "_", " ") }
