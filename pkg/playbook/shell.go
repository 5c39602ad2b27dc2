package playbook

import (
	"bytes"
	"errors"
	"fmt"
	"path"
	"strings"

	"go.yaml.in/yaml/v3"
	"mvdan.cc/sh/v3/syntax"
)

// Shell commands are parsed when the playbook is loaded, with the parser go-task builds on, so that a
// quote left open is reported by validate at its line and column in the file, before any step runs,
// rather than by the shell in the middle of a run.

// shellDialect is the grammar a run command of shell is checked with: bash's for bash (the default),
// POSIX sh's for sh, named or given as a path (/bin/sh). Other shells (python, pwsh, zsh, a custom
// program) are not checked: false.
func shellDialect(shell string) (syntax.LangVariant, string, bool) {
	if shell == "" {
		shell = "bash"
	}
	switch path.Base(shell) {
	case "bash":
		return syntax.LangBash, "bash", true
	case "sh":
		return syntax.LangPOSIX, "sh", true
	}
	return 0, "", false
}

// checkShell parses the run command n of a step whose shell is shell and reports its first syntax
// error at its position in the file. Each ${{ }} is replaced first by a word of as many bytes, which
// the shell would see in its place as a word too, so that positions stay those of the file. A command
// with an unclosed ${{ is not checked: that is reported already.
func (b *builder) checkShell(n *yaml.Node, shell, where string) {
	lang, name, ok := shellDialect(shell)
	if !ok {
		return
	}
	spans, unclosed := scanTemplate(n.Value)
	if unclosed >= 0 {
		return
	}
	text := []byte(n.Value)
	for _, sp := range spans {
		for i := sp.start; i < sp.end; i++ {
			text[i] = 'x'
		}
	}
	if b.shellParsers == nil {
		b.shellParsers = map[syntax.LangVariant]*syntax.Parser{}
	}
	p := b.shellParsers[lang]
	if p == nil {
		p = syntax.NewParser(syntax.Variant(lang))
		b.shellParsers[lang] = p
	}
	_, err := p.Parse(bytes.NewReader(text), "")
	if err == nil {
		return
	}
	var (
		off int
		msg string
	)
	var pe syntax.ParseError
	var le syntax.LangError
	switch {
	case errors.As(err, &pe):
		off = int(pe.Pos.Offset())
		msg = fmt.Sprintf("%s: %s syntax error: %s; fix the command, or set shell: to the program it is written for", where, name, pe.Text)
	case errors.As(err, &le):
		off = int(le.Pos.Offset())
		langs := make([]string, len(le.Langs))
		for i, l := range le.Langs {
			langs[i] = l.String()
		}
		verb := "is"
		if strings.HasSuffix(le.Feature, "s") {
			verb = "are"
		}
		msg = fmt.Sprintf("%s: %s syntax error: %s %s a %s feature, not POSIX sh; write it for sh, or set shell: bash", where, name, le.Feature, verb, strings.Join(langs, "/"))
	default:
		// The parser returns only those two errors for text it reads from memory.
		msg = fmt.Sprintf("%s: cannot check the command as %s: %v", where, name, err)
	}
	line, col := b.posIn(n, off)
	b.d.errorAt(line, col, "%s", msg)
}
