package playbook

import (
	"errors"
	"strings"
	"testing"
)

const paramsPlaybook = `version: 1
name: params
params:
  env: {default: staging, enum: [staging, prod]}
  version: {required: true}
  replicas: {type: int, default: 3, enum: [1, 3, 5]}
  ratio: {type: number, default: 0.5}
  dry: {type: bool, default: false}
  note: {}
  token: {secret: true, required: true, default: demo}
steps:
  - {id: a, run: echo}
`

func TestResolveParams(t *testing.T) {
	pb := mustParse(t, paramsPlaybook)
	got, err := pb.ResolveParams(map[string]string{"version": "1.10", "replicas": "5", "ratio": "2", "dry": "true"})
	if err != nil {
		t.Fatal(err)
	}
	want := Params{"env": "staging", "version": "1.10", "replicas": int64(5), "ratio": 2.0, "dry": true, "note": "", "token": "demo"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %#v, want %#v", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d params, want %d", len(got), len(want))
	}

	errCases := []struct {
		values map[string]string
		want   []string
	}{
		{map[string]string{}, []string{`param "version": is required; pass -p version=VALUE`}},
		{map[string]string{"version": "1", "verison": "2"}, []string{`param "verison": the playbook has no such param; did you mean "version"?`}},
		{map[string]string{"version": "1", "zz": "2"}, []string{`param "zz": the playbook has no such param; declared: env, version, replicas, ratio, dry, note, token`}},
		{map[string]string{"version": "1", "replicas": "three"}, []string{`param "replicas": "three" is not a whole number (int)`}},
		{map[string]string{"version": "1", "replicas": "2"}, []string{`param "replicas": "2" is not allowed; use one of 1, 3, 5`}},
		{map[string]string{"version": "1", "env": "qa"}, []string{`param "env": "qa" is not allowed; use one of staging, prod`}},
		{map[string]string{"version": "1", "ratio": "NaN"}, []string{`param "ratio": "NaN" is not a number`}},
		{map[string]string{"version": "1", "dry": "yes"}, []string{`param "dry": "yes" is not true or false (bool)`}},
		{map[string]string{"dry": "1", "env": "x"}, []string{`param "version": is required`, `param "dry"`, `param "env"`}},
	}
	for _, c := range errCases {
		_, err := pb.ResolveParams(c.values)
		if err == nil {
			t.Errorf("%v: no error", c.values)
			continue
		}
		var pe *ParamError
		if !errors.As(err, &pe) {
			t.Errorf("%v: %T is not a *ParamError", c.values, err)
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: %q does not contain %q", c.values, err, w)
			}
		}
	}
	none := mustParse(t, "version: 1\nname: x\nsteps:\n  - {id: a, run: x}\n")
	if _, err := none.ResolveParams(map[string]string{"a": "b"}); err == nil || !strings.Contains(err.Error(), "declares no params") {
		t.Errorf("no params declared: %v", err)
	}
}

func TestParamDeclarations(t *testing.T) {
	pb := mustParse(t, paramsPlaybook)
	p := pb.Params[2]
	if p.Name != "replicas" || p.Type != ParamInt || p.Default != int64(3) || len(p.Enum) != 3 || p.Enum[2] != int64(5) {
		t.Errorf("replicas: %+v", p)
	}
	if pb.Params[5].Type != ParamString || pb.Params[5].Default != nil {
		t.Errorf("note: %+v", pb.Params[5])
	}
	if !pb.Params[6].Secret || !pb.Params[6].Required {
		t.Errorf("token: %+v", pb.Params[6])
	}
	if pb.Params[1].Default != nil || !pb.Params[1].Required {
		t.Errorf("version: %+v", pb.Params[1])
	}
}

func TestParamEnvName(t *testing.T) {
	cases := map[string]string{
		"my-param": "PLAYBOOK_PARAM_MY_PARAM", "env": "PLAYBOOK_PARAM_ENV", "dry_run": "PLAYBOOK_PARAM_DRY_RUN",
		"v2": "PLAYBOOK_PARAM_V2", "Mixed-Case_9": "PLAYBOOK_PARAM_MIXED_CASE_9",
	}
	for in, want := range cases {
		if got := ParamEnvName(in); got != want {
			t.Errorf("ParamEnvName(%q) = %q, want %q", in, got, want)
		}
	}
}
