package playbook

import (
	"strconv"

	"go.yaml.in/yaml/v3"
)

// The file format, version 1. These types are the single description of it: the strict decoder
// (decode.go) takes its allow-list of keys and its rules from their tags, and the JSON Schema
// (schema.go) is generated from them. The loader then turns them into the public types of playbook.go,
// checking what tags cannot say (exactly one of run/exec/script/aws, the graph, expressions, ...).

// pos records where a mapping starts; embedded in the structs below.
type pos struct{ Node *yaml.Node }

func (p *pos) setPos(n *yaml.Node) { p.Node = n }

type rawPlaybook struct {
	pos
	Version     intField              `yaml:"version" required:"true" min:"1" max:"1" doc:"Format version. Must be 1."`
	Name        textField             `yaml:"name" required:"true" pattern:"id" doc:"The playbook's name: letters, digits, - and _. Recorded with every run."`
	Description textField             `yaml:"description" doc:"What the playbook does, for people."`
	Params      namedMap[rawParam]    `yaml:"params" entry:"param" keypattern:"id" doc:"Inputs, set with -p name=value. Steps see each as $PLAYBOOK_PARAM_<NAME> and expressions as params.<name>."`
	Env         namedMap[scalarField] `yaml:"env" entry:"env" keypattern:"env" doc:"Environment variables of every step. Values are kept as written (1.10 stays 1.10) and may hold ${{ expressions }} over params."`
	MaxParallel intField              `yaml:"max_parallel" min:"1" doc:"How many steps may run at once (default: 4 per CPU, at least 16). --max-parallel overrides it."`
	Timeout     durationField         `yaml:"timeout" positive:"true" doc:"Time limit of the whole run, a Go duration such as 30m."`
	FailFast    boolField             `yaml:"fail_fast" doc:"Default true: after a step fails no new step starts, except those whose if calls always() or failure()."`
	OutputLimit sizeField             `yaml:"output_limit" doc:"Bytes of each output stream kept per step in the database (head and tail): a number of bytes or a size such as 512KiB or 1MiB. Default 1MiB."`
	RunsOn      textField             `yaml:"runs_on" nonempty:"true" doc:"Distributed runs: the task queue whose workers run the steps (default playbook). May hold ${{ expressions }} over params. A local run ignores it."`
	Defaults    *rawDefaults          `yaml:"defaults" doc:"Default values of step settings: shell, timeout, retry, continue_on_error, stop_signal, stop_grace and runs_on. A step's own value wins."`
	Steps       []rawStep             `yaml:"steps" required:"true" minItems:"1" doc:"The steps. They run in parallel where their needs allow."`
	Concurrency concurrencyField      `yaml:"concurrency" doc:"Concurrency group: at most one run of the group is active on a database at a time. A name (may hold ${{ expressions }} over params), or {group: NAME, wait: BOOL}; wait (default true) makes a run whose group is held wait, false refuses it at once (exit status 75)."`
}

type rawParam struct {
	pos
	Type        textField         `yaml:"type" enum:"string|int|number|bool" doc:"string (the default), int, number or bool."`
	Default     scalarField       `yaml:"default" doc:"Value used when -p does not set the param. Must have the param's type."`
	Required    boolField         `yaml:"required" doc:"When true and there is no default, the run needs -p name=value."`
	Enum        list[scalarField] `yaml:"enum" minItems:"1" doc:"The only values allowed."`
	Description textField         `yaml:"description" doc:"What the param is for."`
	Secret      boolField         `yaml:"secret" doc:"Masked as *** wherever playbook writes it: terminal, log files, database."`
}

type rawDefaults struct {
	pos
	Shell           textField     `yaml:"shell" nonempty:"true" doc:"Shell program for run: steps, invoked as SHELL -c COMMAND (default bash)."`
	Timeout         durationField `yaml:"timeout" positive:"true" doc:"Time limit of each attempt of a step."`
	Retry           *rawRetry     `yaml:"retry" doc:"Retry policy of steps that have none."`
	ContinueOnError boolField     `yaml:"continue_on_error" doc:"Whether a failing step counts as succeeded for its dependents and the run."`
	StopSignal      signalField   `yaml:"stop_signal" doc:"Signal sent to a step's process group on cancel or timeout (default SIGTERM)."`
	StopGrace       durationField `yaml:"stop_grace" positive:"true" doc:"How long to wait after stop_signal before SIGKILL."`
	RunsOn          textField     `yaml:"runs_on" nonempty:"true" doc:"Distributed runs: the task queue of steps that name none. May hold ${{ expressions }} over params."`
}

type rawRetry struct {
	pos
	Attempts    intField       `yaml:"attempts" required:"true" min:"1" max:"100" doc:"Total number of tries, the first included (1 = no retry)."`
	Delay       durationField  `yaml:"delay" doc:"Wait before the second try (default 0s)."`
	Backoff     numberField    `yaml:"backoff" min:"1" doc:"Multiplier of the delay after each try (default 1: constant delay)."`
	MaxDelay    durationField  `yaml:"max_delay" positive:"true" doc:"Upper bound of the delay."`
	OnExitCodes list[intField] `yaml:"on_exit_codes" min:"1" max:"255" minItems:"1" doc:"Retry only when the step exits with one of these codes (default: any failure except cancellation)."`
}

type rawStep struct {
	pos
	ID              textField             `yaml:"id" required:"true" pattern:"id" doc:"Unique name of the step: letters, digits, - and _. Expressions read it as steps.<id>."`
	Name            textField             `yaml:"name" doc:"Display name (default: the id)."`
	Needs           list[textField]       `yaml:"needs" single:"true" pattern:"id" doc:"Steps that must finish first. A step starts when all of them are finished and its if is true."`
	If              condField             `yaml:"if" doc:"Expression deciding whether the step runs (default success()). One that calls none of success(), failure(), always(), cancelled() means success() && (expression)."`
	Run             textField             `yaml:"run" nonempty:"true" doc:"Shell command, run as SHELL -c COMMAND. May hold ${{ expressions }}."`
	Exec            list[scalarField]     `yaml:"exec" minItems:"1" doc:"Program and arguments, run without a shell. Items may hold ${{ expressions }}."`
	Script          textField             `yaml:"script" nonempty:"true" doc:"Script file, relative to the playbook's folder. It must exist."`
	Interpreter     textField             `yaml:"interpreter" nonempty:"true" doc:"Program that runs the script (default: the script itself, by its #! line)."`
	AWS             *rawAWS               `yaml:"aws" doc:"An AWS CLI call: aws SERVICE OPERATION ARGS... --profile --region."`
	Shell           textField             `yaml:"shell" nonempty:"true" doc:"Shell program for run (default bash)."`
	Env             namedMap[scalarField] `yaml:"env" entry:"env" keypattern:"env" doc:"Environment variables of this step, added to the playbook's. Values may hold ${{ expressions }}."`
	Dir             textField             `yaml:"dir" nonempty:"true" doc:"Working folder; a relative path is relative to the playbook's folder (the default). May hold ${{ expressions }}."`
	Timeout         durationField         `yaml:"timeout" positive:"true" doc:"Time limit of each attempt, a Go duration such as 5m."`
	Retry           *rawRetry             `yaml:"retry" doc:"Retry policy: attempts, delay, backoff, max_delay, on_exit_codes."`
	ContinueOnError boolField             `yaml:"continue_on_error" doc:"When true a failure is recorded but counts as success for dependents and for the run."`
	StopSignal      signalField           `yaml:"stop_signal" doc:"Signal sent to the step's process group on cancel or timeout (default SIGTERM)."`
	StopGrace       durationField         `yaml:"stop_grace" positive:"true" doc:"How long to wait after stop_signal before SIGKILL."`
	RunsOn          textField             `yaml:"runs_on" nonempty:"true" doc:"Distributed runs: the task queue whose workers run this step. May hold ${{ expressions }} over params. A local run ignores it."`
}

// stepKinds are the keys that say what a step runs; a step has exactly one. The loader and the schema
// both use this list.
var stepKinds = []string{"run", "exec", "script", "aws"}

// stepKeyNeeds are step keys that only make sense with another: shell with run, interpreter with
// script. The loader and the schema both use this table.
var stepKeyNeeds = map[string]string{"shell": "run", "interpreter": "script"}

// whereIn names a step in messages: by its id when it has one, else by its position.
func (rawStep) whereIn(n *yaml.Node, index int) string {
	if id, ok := scalarIDAt(n, "id"); ok {
		return "step " + strconv.Quote(id)
	}
	return "step " + strconv.Itoa(index+1)
}

type rawAWS struct {
	pos
	Service   textField         `yaml:"service" required:"true" pattern:"aws" doc:"AWS CLI service, such as s3 or ec2."`
	Operation textField         `yaml:"operation" required:"true" pattern:"aws" doc:"AWS CLI operation, such as ls or describe-instances."`
	Args      list[scalarField] `yaml:"args" doc:"Further arguments. Items may hold ${{ expressions }}."`
	Profile   textField         `yaml:"profile" doc:"Value of --profile."`
	Region    textField         `yaml:"region" doc:"Value of --region."`
}
