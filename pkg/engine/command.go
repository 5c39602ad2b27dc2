package engine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/playbookhq/playbook/internal/shquote"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Command is what an execution runs: one of Shell, Exec, Script or AWSCLI (as values or pointers). In
// JSON a Command is an object tagged by "type": "shell", "exec", "script" or "aws_cli".
type Command interface{ isCommand() }

// Shell runs Command through a shell as <Shell> -c <Command>. Use it for pipelines, redirections and
// variable expansion; pass untrusted values through Request.Env, never by pasting them into Command.
type Shell struct {
	// Command is the script given to -c. Empty (or only blanks) is rejected with EmptyCommand.
	Command string `json:"command"`
	// Shell is the shell program, looked up in PATH unless it contains a slash. "" means "bash".
	Shell string `json:"shell"`
}

// Exec runs Program with Args directly, without a shell: arguments reach the program literally.
type Exec struct {
	// Program is looked up in PATH unless it contains a slash; a relative path with a slash is relative to
	// Request.Dir. Empty is rejected with EmptyCommand, not found with ProgramNotFound.
	Program string `json:"program"`
	// Args are the arguments after the program name. nil means none.
	Args []string `json:"args"`
}

// Script runs a file. A relative Path is relative to Request.Dir (or the current directory).
//
// With an Interpreter it runs <Interpreter> <Path> (Interpreter may hold arguments: "python3 -u"). Without
// one: an executable file runs directly (its #! line or binary format decides how; an executable text file
// without #! runs as bash <Path>, as shells do); a file that is not executable but starts with #! runs with
// the interpreter its #! line names; a file with neither is rejected with ScriptNotExecutable.
type Script struct {
	Path        string `json:"path"`
	Interpreter string `json:"interpreter,omitempty"`
}

// AWSCLI runs aws <Service> <Operation> <Args...> with AWS_OUTPUT=json, plus AWS_PROFILE and AWS_REGION
// when Profile and Region are set (these win over Request.Env). Service and Operation are required.
type AWSCLI struct {
	Service   string   `json:"service"`
	Operation string   `json:"operation"`
	Args      []string `json:"args"`
	Profile   string   `json:"profile,omitempty"`
	Region    string   `json:"region,omitempty"`
}

func (Shell) isCommand()  {}
func (Exec) isCommand()   {}
func (Script) isCommand() {}
func (AWSCLI) isCommand() {}

// commandValue turns pointer commands into values; nil stays nil.
func commandValue(c Command) Command {
	switch v := c.(type) {
	case *Shell:
		if v != nil {
			return *v
		}
	case *Exec:
		if v != nil {
			return *v
		}
	case *Script:
		if v != nil {
			return *v
		}
	case *AWSCLI:
		if v != nil {
			return *v
		}
	default:
		return c
	}
	return nil
}

// commandJSON is the tagged wire form of every Command.
type commandJSON struct {
	Type        string    `json:"type"`
	Command     *string   `json:"command,omitempty"`
	Shell       *string   `json:"shell,omitempty"`
	Program     *string   `json:"program,omitempty"`
	Args        *[]string `json:"args,omitempty"`
	Path        *string   `json:"path,omitempty"`
	Interpreter *string   `json:"interpreter,omitempty"`
	Service     *string   `json:"service,omitempty"`
	Operation   *string   `json:"operation,omitempty"`
	Profile     *string   `json:"profile,omitempty"`
	Region      *string   `json:"region,omitempty"`
}

func nonNil(a []string) *[]string {
	if a == nil {
		a = []string{}
	}
	return &a
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func marshalCommand(c Command) ([]byte, error) {
	var w commandJSON
	switch v := commandValue(c).(type) {
	case nil:
		return []byte("null"), nil
	case Shell:
		sh := v.Shell
		if sh == "" {
			sh = "bash"
		}
		w = commandJSON{Type: "shell", Command: &v.Command, Shell: &sh}
	case Exec:
		w = commandJSON{Type: "exec", Program: &v.Program, Args: nonNil(v.Args)}
	case Script:
		w = commandJSON{Type: "script", Path: &v.Path, Interpreter: optional(v.Interpreter)}
	case AWSCLI:
		w = commandJSON{Type: "aws_cli", Service: &v.Service, Operation: &v.Operation, Args: nonNil(v.Args),
			Profile: optional(v.Profile), Region: optional(v.Region)}
	default:
		return nil, &Error{Code: CodeSerialization, Msg: fmt.Sprintf("unknown command type %T", c)}
	}
	return json.Marshal(w)
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func unmarshalCommand(data []byte) (Command, error) {
	if bytes.Equal(bytes.TrimSpace(data), []byte("null")) {
		return nil, nil
	}
	var w commandJSON
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return nil, &Error{Code: CodeSerialization, Msg: "decode command", Err: err}
	}
	args := func() []string {
		if w.Args == nil {
			return []string{}
		}
		return *w.Args
	}
	// Fields of another command type are a mistake worth reporting, not ignoring.
	present := map[string]bool{
		"command": w.Command != nil, "shell": w.Shell != nil, "program": w.Program != nil,
		"args": w.Args != nil, "path": w.Path != nil, "interpreter": w.Interpreter != nil,
		"service": w.Service != nil, "operation": w.Operation != nil, "profile": w.Profile != nil,
		"region": w.Region != nil,
	}
	if allowed, ok := commandFields[w.Type]; ok {
		for f, p := range present {
			if p && !allowed[f] {
				return nil, &Error{Code: CodeSerialization,
					Msg: fmt.Sprintf("field %q does not belong to a %q command", f, w.Type)}
			}
		}
	}
	switch w.Type {
	case "shell":
		sh := str(w.Shell)
		if sh == "" {
			sh = "bash"
		}
		return Shell{Command: str(w.Command), Shell: sh}, nil
	case "exec":
		return Exec{Program: str(w.Program), Args: args()}, nil
	case "script":
		return Script{Path: str(w.Path), Interpreter: str(w.Interpreter)}, nil
	case "aws_cli":
		return AWSCLI{Service: str(w.Service), Operation: str(w.Operation), Args: args(),
			Profile: str(w.Profile), Region: str(w.Region)}, nil
	case "":
		return nil, &Error{Code: CodeSerialization, Msg: `command has no "type"`}
	}
	return nil, &Error{Code: CodeSerialization, Msg: fmt.Sprintf("unknown command type %q", w.Type)}
}

var commandFields = map[string]map[string]bool{
	"shell":   {"command": true, "shell": true},
	"exec":    {"program": true, "args": true},
	"script":  {"path": true, "interpreter": true},
	"aws_cli": {"service": true, "operation": true, "args": true, "profile": true, "region": true},
}

// prepared is a Command turned into what exec needs.
type prepared struct {
	path    string   // absolute path of the program
	argv    []string // argv[0] is the name as given
	env     []string // extra KEY=VALUE entries applied last
	display string   // human form (not yet masked)
}

// prepareCommand validates c and resolves its program, without starting anything. pathEnv is the PATH to
// search; dir is the child's working directory ("" = ours). With trust, a program named by a path (with
// a slash) is taken without checking that it is an executable file: the caller checks when the start
// fails (settings.validate says why).
func prepareCommand(c Command, pathEnv, dir string, trust bool) (prepared, error) {
	var p prepared
	switch v := commandValue(c).(type) {
	case nil:
		return p, invalid(EmptyCommand, "command", "", "no command given")
	case Shell:
		if strings.TrimSpace(v.Command) == "" {
			return p, invalid(EmptyCommand, "command.command", "", "empty shell command")
		}
		sh := v.Shell
		if sh == "" {
			sh = "bash"
		}
		path, err := lookPath(sh, pathEnv, dir, "command.shell", trust)
		if err != nil {
			return p, err
		}
		p = prepared{path: path, argv: []string{sh, "-c", v.Command}}
	case Exec:
		if v.Program == "" {
			return p, invalid(EmptyCommand, "command.program", "", "empty program")
		}
		path, err := lookPath(v.Program, pathEnv, dir, "command.program", trust)
		if err != nil {
			return p, err
		}
		p = prepared{path: path, argv: append([]string{v.Program}, v.Args...)}
	case Script:
		var err error
		if p, err = prepareScript(v, pathEnv, dir); err != nil {
			return p, err
		}
	case AWSCLI:
		if v.Service == "" {
			return p, invalid(MissingField, "command.service", "", "aws service is required")
		}
		if v.Operation == "" {
			return p, invalid(MissingField, "command.operation", "", "aws operation is required")
		}
		path, err := lookPath("aws", pathEnv, dir, "command", trust)
		if err != nil {
			return p, err
		}
		p = prepared{path: path, argv: append([]string{"aws", v.Service, v.Operation}, v.Args...)}
		if v.Profile != "" {
			p.env = append(p.env, "AWS_PROFILE="+v.Profile)
		}
		if v.Region != "" {
			p.env = append(p.env, "AWS_REGION="+v.Region)
		}
		p.env = append(p.env, "AWS_OUTPUT=json")
	default:
		return p, invalid(InvalidCommand, "command", "", fmt.Sprintf("unknown command type %T", c))
	}
	for _, a := range p.argv {
		if strings.IndexByte(a, 0) >= 0 {
			return p, invalid(InvalidCommand, "command", "", "argument contains a NUL byte")
		}
	}
	p.display = QuoteArgs(p.argv)
	return p, nil
}

func prepareScript(s Script, pathEnv, dir string) (prepared, error) {
	if s.Path == "" {
		return prepared{}, invalid(EmptyCommand, "command.path", "", "empty script path")
	}
	path := s.Path
	if !filepath.IsAbs(path) && dir != "" {
		path = filepath.Join(dir, path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return prepared{}, invalid(ScriptNotFound, "command.path", s.Path, err.Error())
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return prepared{}, invalid(ScriptNotFound, "command.path", s.Path, "no such file")
	}
	if !fi.Mode().IsRegular() {
		return prepared{}, invalid(ScriptNotExecutable, "command.path", s.Path, "not a regular file")
	}
	withInterp := func(words []string) (prepared, error) {
		ip, err := lookPath(words[0], pathEnv, dir, "command.interpreter", false)
		if err != nil {
			return prepared{}, err
		}
		argv := append(append([]string{}, words...), abs)
		return prepared{path: ip, argv: argv}, nil
	}
	if s.Interpreter != "" {
		words := strings.Fields(s.Interpreter)
		if len(words) == 0 {
			return prepared{}, invalid(EmptyCommand, "command.interpreter", "", "blank interpreter")
		}
		return withInterp(words)
	}
	head := readHead(abs, 256)
	executable := fi.Mode()&0o111 != 0
	shebang := bytes.HasPrefix(head, []byte("#!"))
	switch {
	case executable && (shebang || isBinary(head)):
		return prepared{path: abs, argv: []string{abs}}, nil
	case executable:
		// execve fails with ENOEXEC on a text file without #!; shells then run it with themselves.
		return withInterp([]string{"bash"})
	case shebang:
		line, _, _ := bytes.Cut(head[2:], []byte("\n"))
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			break
		}
		// Like the kernel: the interpreter, then everything after it as at most one argument.
		interp, arg, _ := bytes.Cut(line, []byte(" "))
		words := []string{string(interp)}
		if a := strings.TrimSpace(string(arg)); a != "" {
			words = append(words, a)
		}
		return withInterp(words)
	}
	return prepared{}, invalid(ScriptNotExecutable, "command.path", s.Path,
		"not executable and has no #! line: make it executable, add a #! line or set an interpreter")
}

func readHead(path string, n int) []byte {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	buf := make([]byte, n)
	k, _ := io.ReadFull(f, buf)
	return buf[:k]
}

func isBinary(head []byte) bool {
	for _, magic := range [][]byte{
		[]byte("\x7fELF"),
		{0xfe, 0xed, 0xfa, 0xce}, {0xfe, 0xed, 0xfa, 0xcf}, // Mach-O
		{0xce, 0xfa, 0xed, 0xfe}, {0xcf, 0xfa, 0xed, 0xfe},
		{0xca, 0xfe, 0xba, 0xbe}, // Mach-O universal
	} {
		if bytes.HasPrefix(head, magic) {
			return true
		}
	}
	return false
}

// lookPath finds an executable like exec.LookPath, but in the given PATH value, resolving a relative name
// that contains a slash against dir (where the child will run). Relative PATH entries are skipped, as
// os/exec refuses them (ErrDot). With trust, a name with a slash is resolved but not checked.
func lookPath(file, pathEnv, dir, field string, trust bool) (string, error) {
	if strings.IndexByte(file, 0) >= 0 {
		return "", invalid(InvalidCommand, field, "", "program name contains a NUL byte")
	}
	if strings.Contains(file, "/") {
		path := file
		if !filepath.IsAbs(path) && dir != "" {
			path = filepath.Join(dir, path)
		}
		abs, err := filepath.Abs(path)
		if err == nil && (trust || isExecutable(abs)) {
			return abs, nil
		}
		return "", invalid(ProgramNotFound, field, file, "not an executable file")
	}
	for _, d := range filepath.SplitList(pathEnv) {
		if d == "" || !filepath.IsAbs(d) {
			continue
		}
		if p := filepath.Join(d, file); isExecutable(p) {
			return p, nil
		}
	}
	return "", invalid(ProgramNotFound, field, file, "not found in PATH")
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// QuoteArgs renders argv the way a POSIX shell would need it typed: the display form of an Exec command
// (Result.Command), for records and terminals. Plain words stay as they are; anything else is quoted.
func QuoteArgs(argv []string) string { return shquote.Join(argv) }
