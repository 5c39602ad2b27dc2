package cli

import (
	"github.com/playbookhq/playbook/internal/mask"
	"github.com/playbookhq/playbook/pkg/playbook"
)

// maskedError is an error whose message has the run's secrets masked. It unwraps to the error it
// masks, so that the exit status is still found in it.
type maskedError struct {
	err error
	m   *mask.Masker
}

func (e *maskedError) Error() string { return e.m.String(e.err.Error()) }
func (e *maskedError) Unwrap() error { return e.err }

// maskSecrets returns err with the values given with -p for pb's secret params masked in its message:
// the last line of defence for an error path that did not mask (the runner masks its own, in the
// values' typed form too).
func maskSecrets(err error, pb *playbook.Playbook, values map[string]string) error {
	if err == nil || pb == nil {
		return err
	}
	var secrets []string
	for _, p := range pb.Params {
		if v, ok := values[p.Name]; ok && p.Secret {
			secrets = append(secrets, v)
		}
	}
	m := mask.New(secrets)
	if m.Empty() {
		return err
	}
	return &maskedError{err: err, m: m}
}
