package engine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Request describes one execution. Execute validates it completely before anything is started.
//
// In JSON (the stdio bridge, logs) a Request is an object with snake_case fields: "id", "command" (tagged,
// see Command), "env", "clean_env", "working_dir", "timeout_ms", "output_log_path", "stdout_path",
// "stderr_path", "stop_signal" ("SIGTERM"), "stop_grace_ms", "secrets", "metadata". Durations are whole
// milliseconds, -1 meaning NoTimeout or NoGrace. The JSON holds Secrets in clear: do not log it.
type Request struct {
	// ID names the execution. "" means a generated random UUID. A given ID must be unique among the
	// executions the Engine holds and usable as a file name (no '/', NUL, "." or ".."), else Execute fails
	// with an InvalidID validation error.
	ID string

	// Command is what to run; nil is rejected with EmptyCommand.
	Command Command

	// Env is added on top of the engine process's environment (an Env value wins over an inherited one).
	// A PATH in Env is also where the program is looked up.
	Env map[string]string

	// CleanEnv starts the child with only Env (plus the AWS variables of AWSCLI), inheriting nothing.
	// The program is still looked up in the engine's PATH unless Env sets PATH.
	CleanEnv bool

	// Dir is the child's working directory. "" means the engine's current directory. A missing Dir fails
	// validation with WorkingDirNotFound, a non-directory with InvalidWorkingDir.
	Dir string

	// Timeout bounds the run time, from the moment the process starts (time spent pending does not
	// count). 0 means Config.DefaultTimeout; NoTimeout means none (accepted only with a MaxTimeout of
	// NoTimeout); above Config.MaxTimeout is rejected with TimeoutTooLarge. At the timeout the stop ladder
	// runs and the status becomes timed_out, keeping the output produced so far.
	Timeout time.Duration

	// LogPath, when set, receives both streams interleaved as they arrive (like 2>&1; chunks, not lines,
	// so a line of one stream may be cut by the other), masked. The file is created or truncated with mode
	// 0600 and its folder created with mode 0700; it stays open for the whole execution.
	LogPath string

	// StdoutPath and StderrPath, when set, receive the complete masked stdout and stderr, with the same
	// file rules as LogPath. They may name the same file, which then gets both streams interleaved.
	StdoutPath string
	StderrPath string

	// StopSignal is sent to the process group on cancel, timeout and FailExecution. nil means
	// Config.StopSignal. It must be a syscall.Signal.
	StopSignal os.Signal

	// StopGrace is the time between StopSignal and SIGKILL. 0 means Config.StopGrace; NoGrace means
	// SIGKILL at once.
	StopGrace time.Duration
	// OutputLimit is this execution's Config.OutputLimit: bytes of each stream kept in memory. 0 means
	// the Config's.
	OutputLimit int64

	// Secrets are values replaced by "***" in everything the engine produces about this execution:
	// captured output, line events, log and spill files, Result.Command, Result.Error. Empty values are
	// ignored. A secret split across two writes of the child is still masked.
	Secrets []string

	// Metadata is carried unchanged into every Event and Summary of the execution.
	Metadata Metadata
}

// Metadata is tracking data carried through to events and summaries. The engine copies it at Execute;
// events share that copy, so handlers must not modify Tags.
type Metadata struct {
	// Source says who submitted the execution ("cli", "scheduler", "test", ...).
	Source string `json:"source,omitempty"`
	// ConversationID links the execution to a conversation or session of the caller's (an assistant
	// that asked for the command, say); the engine only carries it into events and results.
	ConversationID string `json:"conversation_id,omitempty"`
	// Tags are free-form labels; playbook's runner sets the step id and attempt here.
	Tags map[string]string `json:"tags,omitempty"`
}

func (m Metadata) clone() Metadata {
	m.Tags = maps.Clone(m.Tags)
	return m
}

type requestJSON struct {
	ID          string            `json:"id,omitempty"`
	Command     json.RawMessage   `json:"command"`
	Env         map[string]string `json:"env,omitempty"`
	CleanEnv    bool              `json:"clean_env,omitempty"`
	Dir         string            `json:"working_dir,omitempty"`
	TimeoutMS   int64             `json:"timeout_ms,omitempty"`
	LogPath     string            `json:"output_log_path,omitempty"`
	StdoutPath  string            `json:"stdout_path,omitempty"`
	StderrPath  string            `json:"stderr_path,omitempty"`
	StopSignal  string            `json:"stop_signal,omitempty"`
	StopGraceMS int64             `json:"stop_grace_ms,omitempty"`
	Secrets     []string          `json:"secrets,omitempty"`
	Metadata    *Metadata         `json:"metadata,omitempty"`
}

func durationMS(d time.Duration) int64 {
	if d < 0 {
		return -1
	}
	return d.Milliseconds()
}

func msDuration(ms int64) time.Duration {
	if ms < 0 {
		return -1
	}
	return time.Duration(ms) * time.Millisecond
}

// MarshalJSON encodes the request in its snake_case wire form.
func (r Request) MarshalJSON() ([]byte, error) {
	cmd, err := marshalCommand(r.Command)
	if err != nil {
		return nil, err
	}
	w := requestJSON{ID: r.ID, Command: cmd, Env: r.Env, CleanEnv: r.CleanEnv, Dir: r.Dir,
		TimeoutMS: durationMS(r.Timeout), LogPath: r.LogPath, StdoutPath: r.StdoutPath, StderrPath: r.StderrPath,
		StopGraceMS: durationMS(r.StopGrace), Secrets: r.Secrets}
	if r.StopSignal != nil {
		sig, err := stopSignalOf(r.StopSignal, 0)
		if err != nil {
			return nil, &Error{Code: CodeSerialization, Msg: "encode stop_signal", Err: err}
		}
		w.StopSignal = SignalName(sig)
	}
	if r.Metadata.Source != "" || r.Metadata.ConversationID != "" || len(r.Metadata.Tags) > 0 {
		w.Metadata = &r.Metadata
	}
	return json.Marshal(w)
}

// UnmarshalJSON decodes the wire form. Unknown fields are rejected, so a typo does not silently become a
// default.
func (r *Request) UnmarshalJSON(data []byte) error {
	var w requestJSON
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return &Error{Code: CodeSerialization, Msg: "decode request", Err: err}
	}
	cmd, err := unmarshalCommand(w.Command)
	if err != nil {
		return err
	}
	out := Request{ID: w.ID, Command: cmd, Env: w.Env, CleanEnv: w.CleanEnv, Dir: w.Dir,
		Timeout: msDuration(w.TimeoutMS), LogPath: w.LogPath, StdoutPath: w.StdoutPath, StderrPath: w.StderrPath,
		StopGrace: msDuration(w.StopGraceMS), Secrets: w.Secrets}
	if w.StopSignal != "" {
		sig, ok := ParseSignal(w.StopSignal)
		if !ok {
			return &Error{Code: CodeSerialization, Msg: fmt.Sprintf("unknown stop_signal %q", w.StopSignal)}
		}
		out.StopSignal = sig
	}
	if w.Metadata != nil {
		out.Metadata = *w.Metadata
	}
	*r = out
	return nil
}

// spec is a validated request, ready to start.
type spec struct {
	id       string
	cmd      prepared
	env      []string // nil = inherit unchanged
	dir      string
	timeout  time.Duration // 0 = none
	stopSig  syscall.Signal
	grace    time.Duration // 0 = SIGKILL at once
	logPath  string
	outPath  string
	errPath  string
	secrets  []string
	metadata Metadata
	limit    int64 // output kept per stream

	// unchecked is the request, kept when validate left its files unchecked (trust): the start must
	// check them when it fails.
	unchecked *Request
}

// validate checks req against the settings and resolves everything needed to start it. It touches the
// file system (stat, PATH lookup) but starts nothing.
//
// With trust, when the execution writes no files, the working directory and a program named by a path
// are not checked (two stats, a tenth of what an engine adds to a short step's start on a small
// virtual machine): the fork checks them anyway, and when it fails the caller validates again without
// trust (sp.unchecked), so that the error is the same one, before anything is registered as started.
// Where the execution writes files, they would be created before the fork, so a request that turns
// out invalid would leave them behind: those are checked first.
func (s *settings) validate(req Request, trust bool) (*spec, error) {
	sp := &spec{id: req.ID, dir: req.Dir, logPath: req.LogPath, outPath: req.StdoutPath,
		errPath: req.StderrPath, secrets: req.Secrets, metadata: req.Metadata.clone(), limit: s.OutputLimit}
	if req.OutputLimit < 0 {
		return nil, invalid(InvalidValue, "output_limit", fmt.Sprint(req.OutputLimit), "negative output limit")
	}
	if req.OutputLimit > 0 {
		sp.limit = req.OutputLimit
	}
	if sp.id == "" {
		sp.id = NewID()
	} else if err := checkID(sp.id); err != nil {
		return nil, err
	}
	for k, v := range req.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.IndexByte(v, 0) >= 0 {
			return nil, invalid(InvalidEnv, "env", k, "environment keys must be non-empty without '=' or NUL, values without NUL")
		}
	}
	trust = trust && s.LogDir == "" && req.LogPath == "" && req.StdoutPath == "" && req.StderrPath == ""
	if req.Dir != "" {
		if !trust {
			if err := checkDir(req.Dir); err != nil {
				return nil, err
			}
		}
		if abs, err := filepath.Abs(req.Dir); err == nil {
			sp.dir = abs
		}
	}

	t := req.Timeout
	if t == 0 {
		t = s.DefaultTimeout
	}
	if t < 0 && t != NoTimeout {
		return nil, invalid(InvalidValue, "timeout", t.String(), "negative timeout; use NoTimeout for none")
	}
	if s.MaxTimeout != NoTimeout && (t == NoTimeout || t > s.MaxTimeout) {
		return nil, &Error{Code: CodeValidation, Err: &ValidationError{Kind: TimeoutTooLarge, Field: "timeout",
			Requested: t, Max: s.MaxTimeout}}
	}
	if t > 0 {
		sp.timeout = t
	}

	sig, err := stopSignalOf(req.StopSignal, s.stopSignal)
	if err != nil {
		return nil, invalid(InvalidValue, "stop_signal", fmt.Sprint(req.StopSignal), err.Error())
	}
	sp.stopSig = sig
	switch g := req.StopGrace; {
	case g == 0:
		sp.grace = s.StopGrace
	case g == NoGrace:
		sp.grace = 0
	case g < 0:
		return nil, invalid(InvalidValue, "stop_grace", g.String(), "negative grace; use NoGrace for none")
	default:
		sp.grace = g
	}
	if sp.grace < 0 { // Config.StopGrace was NoGrace
		sp.grace = 0
	}

	pathEnv, ok := req.Env["PATH"]
	if !ok {
		pathEnv = os.Getenv("PATH")
	}
	if sp.cmd, err = prepareCommand(req.Command, pathEnv, sp.dir, trust); err != nil {
		return nil, err
	}
	if trust {
		kept := req
		sp.unchecked = &kept
	}

	var inherited []string
	if !req.CleanEnv {
		inherited = os.Environ()
	}
	sp.env = buildEnv(inherited, req.Env, sp.cmd.env)
	return sp, nil
}

// checkDir checks that a request's working directory is one.
func checkDir(dir string) error {
	fi, err := os.Stat(dir)
	switch {
	case err != nil && os.IsNotExist(err):
		return invalid(WorkingDirNotFound, "dir", dir, "no such directory")
	case err != nil:
		return invalid(InvalidWorkingDir, "dir", dir, err.Error())
	case !fi.IsDir():
		return invalid(InvalidWorkingDir, "dir", dir, "not a directory")
	}
	return nil
}

// buildEnv is the child's environment: inherited, then env, then extra ("KEY=value" entries the command
// itself needs, such as AWS_OUTPUT), each later value of a key replacing an earlier one. Every key appears
// once: programs disagree on which of two values counts (Go's os.Getenv takes the first, a shell the
// last), so a duplicate would override in one and not in another.
func buildEnv(inherited []string, env map[string]string, extra []string) []string {
	out := make([]string, 0, len(inherited)+len(env)+len(extra))
	if len(env) == 0 && len(extra) == 0 {
		return append(out, inherited...)
	}
	for _, kv := range inherited {
		k, _, _ := strings.Cut(kv, "=")
		if _, set := env[k]; !set && !extraHas(extra, k) {
			out = append(out, kv)
		}
	}
	for k, v := range env {
		if !extraHas(extra, k) {
			out = append(out, k+"="+v)
		}
	}
	return append(out, extra...)
}

func extraHas(extra []string, key string) bool {
	for _, kv := range extra {
		if k, _, _ := strings.Cut(kv, "="); k == key {
			return true
		}
	}
	return false
}

func checkID(id string) error {
	if id == "." || id == ".." || len(id) > 255 || strings.ContainsAny(id, "/\x00") {
		return invalid(InvalidID, "id", id, "must be a usable file name (no '/', NUL, '.' or '..', at most 255 bytes)")
	}
	return nil
}
