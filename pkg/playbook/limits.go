package playbook

// Limits of the format. They bound the time and memory that loading any file can take, so that
// validating an untrusted playbook (a pull request in CI, say) is safe, and they bound what one
// expression can cost at run time. They are constants: nothing in this package is configurable at run
// time, so a playbook that validates on one machine validates on every machine.
const (
	// MaxFileSize is the largest playbook file accepted, in bytes (1 MiB). Larger files are refused
	// before any parsing with "playbook too large".
	MaxFileSize = 1 << 20

	// MaxExpressionLength is the longest expression accepted, in bytes (4 KiB): the text of an if, or
	// of one ${{ }} part of a template. Longer expressions are refused before they are compiled.
	MaxExpressionLength = 4 << 10

	// MaxExpressionNodes is the most syntax-tree nodes one expression may have once parsed (2000).
	MaxExpressionNodes = 2000

	// EvalMemoryBudget is expr's memory budget for one evaluation, in its own units (roughly one per
	// element of an array or range it builds). len(1..10000000) exceeds it and fails with "memory
	// budget exceeded" instead of allocating.
	EvalMemoryBudget = 1_000_000

	// EvalStringBudget is how many bytes of strings one evaluation may build (8 MiB) through +, join,
	// split, lower, upper and string. expr v1.17.8 does not count string building against its memory
	// budget (v1.18 does), so this package does it.
	EvalStringBudget = 8 << 20

	// maxAliasNodes bounds how many nodes the loader visits through YAML aliases, so that an alias
	// bomb costs at most this much work however it is nested.
	maxAliasNodes = 100_000

	// MaxOutputLimit is the largest output limit accepted, by a playbook's output_limit and by the
	// CLI's --output-limit alike: 1 GiB of each stream (stdout, stderr) of each step.
	MaxOutputLimit = 1 << 30

	// maxRetryAttempts is the largest retry.attempts accepted.
	maxRetryAttempts = 100
)
