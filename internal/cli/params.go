package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
	"golang.org/x/term"

	"github.com/playbookhq/playbook/pkg/playbook"
	"github.com/playbookhq/playbook/pkg/run"
)

// A run's params come from, highest first: -p flags, the --params-file, the values a retried run
// recorded (retry only), the environment (PLAYBOOK_PARAM_<NAME>), and, for a secret still missing
// that the run needs, a prompt on the terminal. Only -p puts a value on the command line, where ps
// and the shell's history show it.
//
// The order: what is typed for this run beats what is kept in a file, which beats what happens to be
// in the environment (a variable exported long ago, or left by an outer run whose steps get its
// params as PLAYBOOK_PARAM_<NAME>); a retry's "same params" beat the environment for the same reason.

// maxParamsFile is the largest --params-file read: params are short, a bigger file is a mistake.
const maxParamsFile = 1 << 20

// paramsFileFlag registers --params-file beside -p.
func paramsFileFlag(f *pflag.FlagSet, file *string) {
	f.StringVar(file, "params-file", "", "read params from `FILE`: a YAML mapping or NAME=value lines (keeps secrets off the command line; a file holding a secret must not be readable by group or others)")
}

// gatherParams merges the param values of every source into flags (the -p values, which win) and
// returns them. It prompts on the terminal for a secret the run needs and no source gave. Its errors
// exit 2 and never show a value.
func gatherParams(sys *System, pb *playbook.Playbook, o *runOptions, flags map[string]string) (map[string]string, error) {
	values := map[string]string{}
	for _, p := range pb.Params {
		// An empty variable counts as unset: CI systems define empty variables for secrets they
		// do not have, which must not pass as a value.
		if v := sys.getenv(playbook.ParamEnvName(p.Name)); v != "" {
			values[p.Name] = v
		}
	}
	for k, v := range o.given {
		values[k] = v
	}
	if o.ParamsFile != "" {
		fromFile, err := readParamsFile(o.ParamsFile, pb)
		if err != nil {
			return nil, &ExitError{Code: run.ExitUsage, Err: err}
		}
		for k, v := range fromFile {
			values[k] = v
		}
	}
	for k, v := range flags {
		values[k] = v
	}

	// The secrets the run needs and nothing gave: required ones without a default, and those a
	// retried run had (never recorded) that have none.
	var missing []*playbook.Param
	for _, p := range pb.Params {
		if _, ok := values[p.Name]; ok || !p.Secret {
			continue
		}
		retried := slices.Contains(o.unrecorded, p.Name)
		switch {
		case p.Default != nil && retried:
			fmt.Fprintf(sys.ErrOut, "Secret param %s was not recorded; the retry uses its default (give it with %s, --params-file or -p %s=... to change it).\n",
				p.Name, playbook.ParamEnvName(p.Name), p.Name)
		case p.Default == nil && (p.Required || retried):
			missing = append(missing, p)
		}
	}
	if len(missing) == 0 {
		return values, nil
	}
	fd, ok := terminal(sys.In)
	if !ok {
		var names []string
		for _, p := range missing {
			names = append(names, p.Name)
		}
		if len(o.unrecorded) > 0 {
			return nil, &ExitError{Code: run.ExitUsage, Err: fmt.Errorf("secret params are never recorded; give them again: %s, or off the command line: %s in the environment, or a --params-file (on a terminal, playbook asks for them)",
				paramFlagsHint(names), envHint(names))}
		}
		what := "secret param " + names[0] + " is"
		if len(names) > 1 {
			what = "secret params " + strings.Join(names, ", ") + " are"
		}
		return nil, &ExitError{Code: run.ExitUsage, Err: fmt.Errorf("%s required: set %s in the environment, give it in a --params-file, or run on a terminal to be asked (%s works too, but shows the value to ps and the shell's history)",
			what, envHint(names), paramFlagsHint(names))}
	}
	for _, p := range missing {
		v, err := promptSecret(sys, fd, p)
		if err != nil {
			return nil, err
		}
		values[p.Name] = v
	}
	return values, nil
}

// envHint lists the environment variables that give names, "PLAYBOOK_PARAM_A or PLAYBOOK_PARAM_B".
func envHint(names []string) string {
	vars := make([]string, len(names))
	for i, n := range names {
		vars[i] = playbook.ParamEnvName(n)
	}
	return strings.Join(vars, ", ")
}

// terminal returns the file descriptor of r when r is a terminal.
func terminal(r io.Reader) (int, bool) {
	f, ok := r.(*os.File)
	if !ok || f == nil {
		return 0, false
	}
	fd := int(f.Fd())
	return fd, term.IsTerminal(fd)
}

// promptSecret asks for a secret param's value on the terminal fd, without echo. The prompt goes to
// stderr, or to the terminal itself when stderr is not one (redirected to a log, the prompt would
// not be seen). A signal while it waits (Ctrl-C) restores the terminal, which would otherwise stay
// without echo, and ends the command with the signal's exit status.
func promptSecret(sys *System, fd int, p *playbook.Param) (string, error) {
	what := p.Name
	if p.Description != "" {
		what += " (" + firstLine(p.Description) + ")"
	}
	out := sys.ErrOut
	if f, ok := out.(*os.File); !ok || !term.IsTerminal(int(f.Fd())) {
		if tty, ok := sys.In.(*os.File); ok {
			out = tty
		}
	}
	fmt.Fprintf(out, "Secret param %s: ", what)
	type result struct {
		b   []byte
		err error
	}
	var res result
	if sys.Signals == nil {
		res.b, res.err = term.ReadPassword(fd)
	} else {
		state, err := term.GetState(fd)
		if err != nil {
			return "", fmt.Errorf("read secret param %s from the terminal: %w", p.Name, err)
		}
		sigs, stop := sys.Signals()
		defer stop()
		done := make(chan result, 1)
		go func() {
			b, err := term.ReadPassword(fd)
			done <- result{b, err}
		}()
		select {
		case res = <-done:
		case sig := <-sigs:
			// The read goes on in its goroutine until the process exits, which it is about to.
			_ = term.Restore(fd, state)
			fmt.Fprintln(out)
			return "", &ExitError{Code: run.SignalExit(signo(sig))}
		}
	}
	fmt.Fprintln(out)
	if res.err != nil {
		return "", &ExitError{Code: run.ExitUsage, Err: fmt.Errorf("read secret param %s from the terminal: %w", p.Name, res.err)}
	}
	v := strings.TrimSuffix(string(res.b), "\r")
	if v == "" {
		return "", usageErrorf("nothing typed for secret param %s; the run needs a value", p.Name)
	}
	return v, nil
}

// paramEntry is one value of a params file, with its line for messages.
type paramEntry struct {
	name, value string
	line        int
}

// envLine is a NAME=value line: the first line of a file that is neither blank nor a comment decides
// between that format and YAML.
var envLine = regexp.MustCompile(`^[A-Za-z0-9_-]+=`)

// readParamsFile reads --params-file: NAME=value lines or a YAML mapping. Every name must be a param
// of pb. A regular file that holds a value for a secret param must not be readable by its group or
// others; a pipe (--params-file <(pass show deploy)) is read by this process alone.
func readParamsFile(path string, pb *playbook.Playbook) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--params-file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("--params-file: %w", err)
	}
	if fi.IsDir() {
		return nil, fmt.Errorf("--params-file %s is a folder; want a file of NAME=value lines or a YAML mapping", path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxParamsFile+1))
	if err != nil {
		return nil, fmt.Errorf("--params-file %s: %w", path, err)
	}
	if len(data) > maxParamsFile {
		return nil, fmt.Errorf("--params-file %s is larger than 1 MiB; params are short values", path)
	}
	entries, err := parseParams(path, data)
	if err != nil {
		return nil, err
	}

	var errs []error
	var secrets []string
	out := map[string]string{}
	first := map[string]int{}
	var names []string
	for _, p := range pb.Params {
		names = append(names, p.Name)
	}
	for _, e := range entries {
		p := paramByName(pb, e.name)
		switch {
		case p == nil && len(names) == 0:
			errs = append(errs, fmt.Errorf("%s:%d: param %q: the playbook declares no params", path, e.line, e.name))
			continue
		case p == nil:
			errs = append(errs, fmt.Errorf("%s:%d: param %q: the playbook has no such param; declared: %s", path, e.line, e.name, strings.Join(names, ", ")))
			continue
		}
		if l, dup := first[e.name]; dup {
			errs = append(errs, fmt.Errorf("%s:%d: param %q is given again (first on line %d)", path, e.line, e.name, l))
			continue
		}
		first[e.name] = e.line
		out[e.name] = e.value
		if p.Secret {
			secrets = append(secrets, e.name)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if perm := fi.Mode().Perm(); len(secrets) > 0 && fi.Mode().IsRegular() && perm&0o077 != 0 {
		return nil, fmt.Errorf("--params-file %s holds secret param %s but its mode %04o lets its group or others read it: chmod 600 %s",
			path, strings.Join(secrets, ", "), perm, path)
	}
	return out, nil
}

func paramByName(pb *playbook.Playbook, name string) *playbook.Param {
	for _, p := range pb.Params {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// parseParams reads a params file's text in whichever format its first line that is neither blank nor
// a comment has: NAME=value, else YAML.
func parseParams(path string, data []byte) ([]paramEntry, error) {
	for _, line := range strings.Split(string(data), "\n") {
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		if envLine.MatchString(t) {
			return parseParamLines(path, string(data))
		}
		break
	}
	return parseParamsYAML(path, data)
}

// parseParamLines reads NAME=value lines. Blank lines and lines starting with # are skipped; the value
// is the rest of the line as it is (a # in it is part of it), less one pair of matching quotes around
// it.
func parseParamLines(path, text string) ([]paramEntry, error) {
	var out []paramEntry
	var errs []error
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSuffix(line, "\r")
		t := strings.TrimLeft(line, " \t")
		if strings.TrimSpace(t) == "" || strings.HasPrefix(t, "#") {
			continue
		}
		if !envLine.MatchString(t) {
			// The line is not shown: it may hold a secret.
			errs = append(errs, fmt.Errorf("%s:%d: want NAME=value (this file's first line is in that form, so it is not read as YAML)", path, i+1))
			continue
		}
		name, value, _ := strings.Cut(t, "=")
		if len(value) >= 2 && (value[0] == '"' || value[0] == '\'') && value[len(value)-1] == value[0] {
			value = value[1 : len(value)-1]
		}
		out = append(out, paramEntry{name: name, value: value, line: i + 1})
	}
	return out, errors.Join(errs...)
}

// parseParamsYAML reads a YAML mapping of param names to single values. A value is taken as written
// (version: 1.10 is "1.10"), then checked against the param's type like a -p value.
func parseParamsYAML(path string, data []byte) ([]paramEntry, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("--params-file %s is neither NAME=value lines nor YAML: %v", path, err)
	}
	if len(doc.Content) == 0 {
		return nil, nil // empty, or only comments
	}
	m := doc.Content[0]
	if m.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s:%d:%d: want a mapping of param names to values (name: value), or NAME=value lines", path, m.Line, m.Column)
	}
	var out []paramEntry
	var errs []error
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			errs = append(errs, fmt.Errorf("%s:%d:%d: want a param name", path, k.Line, k.Column))
			continue
		}
		if v.Kind != yaml.ScalarNode || v.Tag == "!!null" {
			errs = append(errs, fmt.Errorf("%s:%d:%d: param %q: want one value (text, a number, true or false)", path, v.Line, v.Column, k.Value))
			continue
		}
		out = append(out, paramEntry{name: k.Value, value: v.Value, line: k.Line})
	}
	return out, errors.Join(errs...)
}
