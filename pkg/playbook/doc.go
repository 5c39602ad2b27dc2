// Package playbook is the playbook language: it loads a YAML playbook (format version 1), checks
// everything that can be checked before anything runs, and returns an immutable *Playbook whose steps
// form a graph with a topological Order and parallel Levels. The scheduler (package
// playbook/scheduler) runs it; this package never starts a process.
//
// # Loading
//
// Load and Parse are strict (go.yaml.in/yaml/v3 underneath, but decoded by hand from yaml.Node so that
// nothing slips through yaml v3's gaps): unknown keys are errors everywhere, with a did-you-mean; bool
// fields take only true and false; env values keep their text (1.10 stays "1.10"); duplicate keys,
// several YAML documents, files over MaxFileSize, UTF-16 and invalid UTF-8 are refused; alias bombs and
// deep nesting cost bounded work. Every problem in a file is reported, in line order, as an *Error
// ("file:line:col: message") in an ErrorList.
//
// The format types in format.go are the single description of the format: the decoder takes its rules
// from their struct tags and Schema generates the JSON Schema from them.
//
// # Expressions
//
// if conditions and the ${{ }} parts of run, exec, env, dir and aws args are expr-lang/expr
// expressions, all compiled at load time against a typed context: params.<name> (typed as declared),
// env.<NAME> (the playbook's declared env, never the runner's environment), steps.<id>.status,
// exit_code, outputs.<key> and attempts (only for steps the reader depends on), run.id, run.name,
// run.status, and in if the status functions success(), failure(), always() and cancelled() with
// GitHub Actions' meaning. Builtins are off except a short allow-list of pure functions; nothing reads
// the clock, the environment or files. Expressions are capped in length (MaxExpressionLength) and size
// (MaxExpressionNodes), and an evaluation in memory (EvalMemoryBudget, EvalStringBudget).
//
// Conditions and templates are evaluated by the scheduler with Condition.Eval and Template.Render over
// a State it maintains.
package playbook
