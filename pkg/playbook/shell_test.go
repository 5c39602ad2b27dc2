package playbook

import (
	"strings"
	"testing"
)

// shellPlaybook is a playbook with one step a whose run (and shell, when given) is written as given,
// from line 4 on.
func shellPlaybook(step string) string {
	return "version: 1\nname: sh\nsteps:\n  - id: a\n" + step
}

// TestShellSyntax: a run command whose shell is bash or sh is parsed when the playbook is loaded, and
// its first syntax error is reported at its line and column in the file, whatever the YAML style of
// the command, with each ${{ }} counted at its written length.
func TestShellSyntax(t *testing.T) {
	cases := []struct {
		name, step string
		line, col  int
		msg        string
	}{
		{"plain", "    run: echo \"hello\n", 5, 15, `run of step "a": bash syntax error: reached EOF without closing quote`},
		{"after an expression", "    run: echo ${{ \"é\" + 'x' }} 'unclosed\n", 5, 32, "without closing quote `'`"},
		{"single-quoted", "    run: 'echo ''it'' \"a'\n", 5, 23, "without closing quote"},
		{"double-quoted with escapes", "    run: \"echo \\t\\u00e9 $(ls\"\n", 5, 25, "without matching `$(` with `)`"},
		{"plain on two lines", "    run: echo one &&\n      echo 'two\n", 6, 12, "without closing quote"},
		{"literal", "    run: |\n      echo one\n      if true; then\n        echo two\n", 7, 7, "`if` statement must end with `fi`"},
		{"literal, error deep", "    run: |\n      for f in *; do\n          echo \"$f\n      done\n", 7, 16, "without closing quote"},
		{"literal with explicit indentation", "    run: |2\n        echo a |\n", 6, 16, "`|` must be followed by a statement"},
		{"folded", "    run: >\n      echo one\n      two \"three\n", 7, 11, "without closing quote"},
		{"sh refuses bash arrays", "    shell: sh\n    run: a=(1 2)\n", 6, 12, "arrays are a bash/mksh/zsh feature, not POSIX sh; write it for sh, or set shell: bash"},
		{"sh by its path", "    shell: /bin/sh\n    run: echo ${x//a/b}\n", 6, 18, "sh syntax error: search and replace is a bash/mksh/zsh feature"},
		{"bash by its path", "    shell: /usr/bin/bash\n    run: echo )\n", 6, 15, "bash syntax error: a command can only contain words and redirects"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { wantError(t, shellPlaybook(c.step), c.line, c.col, c.msg) })
	}
}

// TestShellDefaults: the shell of a step is its own, else defaults.shell, else bash; a run for another
// shell is not parsed, and valid commands pass, whatever their ${{ }} hold.
func TestShellDefaults(t *testing.T) {
	wantError(t, "version: 1\nname: sh\ndefaults: {shell: sh}\nsteps:\n  - {id: a, run: 'a=(1)'}\n", 5, 21, "sh syntax error: arrays")
	for _, y := range []string{
		"version: 1\nname: sh\ndefaults: {shell: sh}\nsteps:\n  - {id: a, run: 'a=(1)', shell: bash}\n",
		"version: 1\nname: sh\nsteps:\n  - {id: a, run: 'print(\"a'')', shell: python3}\n",
		"version: 1\nname: sh\ndefaults: {shell: pwsh}\nsteps:\n  - {id: a, run: 'Write-Host \"a'}\n",
		"version: 1\nname: sh\nsteps:\n  - {id: a, run: 'echo \"a', shell: zsh}\n",
		// A ${{ }} whose expression holds quotes and brackets is a word to the shell, wherever it is.
		"version: 1\nname: sh\nparams:\n  p: {default: x, enum: [x]}\nsteps:\n  - id: a\n    run: |\n      echo '${{ params.p == \"it's\" ? \")\" : \"(\" }}' ${{ \"`\" }}\n      case ${{ params.p }} in ${{ params.p }}) echo ok ;; esac\n      echo $(( ${{ 1 + 2 }} + 1 ))\n",
		"version: 1\nname: sh\nsteps:\n  - id: a\n    run: |\n      cat <<'EOF'\n      it's \"unbalanced\n      EOF\n      [[ -f x ]] && arr=(1 2) && echo ${arr[@]}\n",
	} {
		if _, err := Parse("test.yaml", []byte(y)); err != nil {
			t.Errorf("%v\n%s", err, y)
		}
	}
	// An unclosed ${{ is reported once, as such, and the command is not parsed.
	list := parseErr(t, "version: 1\nname: sh\nsteps:\n  - {id: a, run: 'echo \"${{ x'}\n")
	if len(list) != 1 || !strings.Contains(list[0].Msg, "unclosed ${{") {
		t.Errorf("want only the unclosed ${{ error, got:\n%v", list)
	}
}
