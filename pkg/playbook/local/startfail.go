package local

import (
	"errors"

	"github.com/playbookhq/playbook/pkg/engine"
)

// StartFailure says why an attempt could not start, the way a shell would: "kubectl-x: command not
// found", "deploy.sh: no such file", "dir build: no such directory". A request the engine refused for
// another reason keeps the engine's own words without its "engine: invalid request:" preamble; any
// other error (a file the runner could not make) is returned as it is.
func StartFailure(err error) string {
	var v *engine.ValidationError
	if !errors.As(err, &v) {
		return err.Error()
	}
	switch {
	case v.Kind == engine.ProgramNotFound && v.Msg == "not found in PATH":
		return v.Value + ": command not found"
	case v.Field == "dir" && v.Value != "":
		return "dir " + v.Value + ": " + v.Msg
	case v.Value != "" && v.Msg != "" && v.Kind != engine.InvalidEnv:
		return v.Value + ": " + v.Msg
	}
	return v.Error()
}
