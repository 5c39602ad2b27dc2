package scheduler

import (
	"fmt"
	"path/filepath"
	"syscall"
	"time"

	"github.com/playbookhq/playbook/internal/shquote"
	"github.com/playbookhq/playbook/pkg/playbook"
)

// Launch is one attempt of a step, rendered: what to run, with what environment, where, and how to
// stop it. Exactly one of Run, Argv, Script and AWS is set.
type Launch struct {
	Run   string // a shell command, run as Shell -c Run
	Shell string // for Run: "" = bash

	Argv []string // a program and its arguments, run without a shell

	Script      string // the script file, absolute
	Interpreter string // for Script: "" = run the file itself

	AWS *AWSCall

	// Queue is the task queue whose workers run the attempt (the step's runs_on, rendered; else
	// playbook.DefaultQueue). Set only when Config.Distributed: a local run ignores runs_on.
	Queue string

	// Display is the command as people see it and the record keeps it, secrets masked.
	Display string
	// Env is what the playbook adds to the runner's environment: PLAYBOOK_RUN_ID, PLAYBOOK_PARAM_*,
	// the playbook's env, the step's env, PLAYBOOK_STEP_ID. The driver adds PLAYBOOK_OUTPUT.
	Env map[string]string
	// Dir is the working folder: absolute in a local run (a relative dir resolves against the
	// playbook's folder); in a distributed run the step's dir as rendered, which the worker resolves
	// against its own folder ("" = that folder).
	Dir string
	// Timeout bounds the attempt; 0 = none. StopSignal (0 = SIGTERM) and StopGrace (0 = the driver's
	// default) say how to stop it: the signal to its process group, SIGKILL after the grace.
	Timeout    time.Duration
	StopSignal syscall.Signal
	StopGrace  time.Duration

	err          error  // rendering failed: the attempt fails without starting
	scriptSHA256 string // for the fingerprint
}

// AWSCall is the aws: form: aws SERVICE OPERATION ARGS... [--profile P] [--region R].
type AWSCall struct {
	Service, Operation string
	Args               []string
	Profile, Region    string
}

// render builds the launch of the step's next attempt from the run's state.
func (c *Core) render(s *step) *Launch {
	st := s.st
	l := &Launch{Timeout: st.Timeout, StopSignal: st.StopSignal, StopGrace: st.StopGrace}
	s.display = ""
	switch {
	case st.Run != nil:
		cmd, err := st.Run.Render(&c.state)
		if err != nil {
			l.err = fmt.Errorf("run: %w", err)
			return l
		}
		l.Run, l.Shell = cmd, st.Shell
		s.display = c.masker.String(cmd)
	case len(st.Exec) > 0:
		argv, err := c.renderAll(st.Exec, "exec")
		if err != nil {
			l.err = err
			return l
		}
		l.Argv = argv
		s.display = c.masker.String(shquote.Join(argv))
	case st.Script != "":
		l.Script, l.Interpreter, l.scriptSHA256 = st.Script, st.Interpreter, st.ScriptSHA256
		s.display = st.Script
		if st.Interpreter != "" {
			s.display = st.Interpreter + " " + st.Script
		}
	case st.AWS != nil:
		args, err := c.renderAll(st.AWS.Args, "aws args")
		if err != nil {
			l.err = err
			return l
		}
		l.AWS = &AWSCall{Service: st.AWS.Service, Operation: st.AWS.Operation, Args: args,
			Profile: st.AWS.Profile, Region: st.AWS.Region}
		s.display = c.masker.String(shquote.Join(append([]string{"aws", st.AWS.Service, st.AWS.Operation}, args...)))
	default:
		l.err = fmt.Errorf("step %q has nothing to run", st.ID)
		return l
	}
	l.Display = s.display

	env := make(map[string]string, len(c.baseEnv)+len(st.Env)+2)
	for k, v := range c.baseEnv {
		env[k] = v
	}
	for _, ev := range st.Env {
		v, err := ev.Value.Render(&c.state)
		if err != nil {
			l.err = fmt.Errorf("env %s: %w", ev.Name, err)
			return l
		}
		env[ev.Name] = v
	}
	env["PLAYBOOK_STEP_ID"] = st.ID
	l.Env = env

	if c.cfg.Distributed {
		l.Queue = playbook.DefaultQueue
		if st.RunsOn != nil {
			q, err := st.RunsOn.Render(&c.state)
			if err == nil {
				err = playbook.CheckQueue(q)
			}
			if err != nil {
				l.err = fmt.Errorf("runs_on: %w", err)
				return l
			}
			l.Queue = q
		}
	}

	if !c.cfg.Distributed {
		l.Dir = c.pb.Dir
	}
	if st.Dir != nil {
		d, err := st.Dir.Render(&c.state)
		if err != nil {
			l.err = fmt.Errorf("dir: %w", err)
			return l
		}
		if !filepath.IsAbs(d) && !c.cfg.Distributed {
			d = filepath.Join(c.pb.Dir, d)
		}
		l.Dir = d
	}
	return l
}

// renderAll renders a list of templates; an error names the item ("exec[2]: ...").
func (c *Core) renderAll(ts []*playbook.Template, what string) ([]string, error) {
	out := make([]string, len(ts))
	for i, t := range ts {
		v, err := t.Render(&c.state)
		if err != nil {
			return nil, fmt.Errorf("%s[%d]: %w", what, i, err)
		}
		out[i] = v
	}
	return out, nil
}
