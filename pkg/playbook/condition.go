package playbook

import (
	"fmt"
	"strings"
)

// Condition is a compiled if. Its semantics are GitHub Actions': a step without an if runs when
// success() is true (every step it needs succeeded), and an if that calls none of success(),
// failure(), always() and cancelled() means success() && (if). A Condition is immutable; Eval may be
// called from several goroutines.
type Condition struct {
	source string    // as written, without a ${{ }} around it; "success()" by default
	c      *compiled // nil for the default condition
	info   *evalInfo
}

// defaultCondition is the if of a step that has none.
func defaultCondition() *Condition { return &Condition{source: "success()"} }

// Source returns the expression as written (without a ${{ }} around it), or "success()" when the step
// has no if.
func (c *Condition) Source() string { return c.source }

// Calls reports whether the expression as written calls the status function named function
// ("success", "failure", "always" or "cancelled"; a trailing "()" is allowed). The default condition
// calls success(). The implicit success() of an if that calls none of them is not a call: for
// `if: params.env == "prod"` every Calls is false. The scheduler uses Calls to decide which steps may
// still start after a failure (those calling always() or failure()) or a cancellation (always() or
// cancelled()).
func (c *Condition) Calls(function string) bool {
	bit := statusBit(function)
	if c.c == nil {
		return bit == statusBit("success")
	}
	return bit != 0 && c.c.calls&bit != 0
}

// CallsStatus reports whether the expression calls any of success(), failure(), always() and
// cancelled(); false means the implicit success() && (if) applies. The default condition calls
// success().
func (c *Condition) CallsStatus() bool { return c.c == nil || c.c.calls != 0 }

// Static reports whether the condition reads nothing but params and env (status functions aside), so
// that a dry run can evaluate it before anything runs, assuming success().
func (c *Condition) Static() bool { return c.c == nil || c.c.static() }

// Eval evaluates the condition with the run's state and the status functions' values for the step.
// An error (a value of the wrong type at run time, memory budget exceeded, too many bytes of strings
// built) means the condition could not be decided; the scheduler fails the step.
func (c *Condition) Eval(s *State, f StatusFuncs) (bool, error) {
	if c.c == nil {
		return f.Success, nil
	}
	if c.c.calls == 0 && !f.Success {
		// The implicit success() && (...): short-circuit like && would.
		return false, nil
	}
	out, err := c.info.run(c.c, s, &f)
	if err != nil {
		return false, fmt.Errorf("if %s: %w", truncate(c.source, 60), err)
	}
	b, ok := out.(bool)
	if !ok {
		return false, fmt.Errorf("if %s: gave %T, not true or false", truncate(c.source, 60), out)
	}
	return b, nil
}

// stripWrapper removes a ${{ }} around a whole if, which GitHub Actions users write out of habit, and
// returns the byte offset of the expression in the original text.
func stripWrapper(src string) (string, int) {
	t := strings.TrimSpace(src)
	lead := strings.Index(src, t)
	if strings.HasPrefix(t, "${{") && strings.HasSuffix(t, "}}") && strings.Count(t, "${{") == 1 {
		inner := t[3 : len(t)-2]
		return inner, lead + 3
	}
	return src, 0
}
