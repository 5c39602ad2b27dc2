package playbook

import (
	"strings"
	"unicode/utf8"
)

// editDistance is the optimal string alignment distance between a and b: insertions, deletions,
// substitutions and transpositions of adjacent characters each cost 1, so "rnu" is one edit from "run".
// It compares runes and uses two rows of memory plus one, O(len(a)*len(b)) time: it is only ever called
// on short names.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	if len(ra) == 0 {
		return len(rb)
	}
	if len(rb) == 0 {
		return len(ra)
	}
	prev2 := make([]int, len(rb)+1) // row i-2
	prev := make([]int, len(rb)+1)  // row i-1
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}

// suggest returns the candidate closest to word, or "" when none is close enough to be a likely typo.
// Close enough: at most a third of the word's length in edits (at least one, at most three), and
// fewer edits than the word has characters, so that "x" does not suggest "id". Case differences count
// as no edit at all, so "Run" suggests "run". Ties go to the earliest candidate, which callers order
// by how common each is.
func suggest(word string, candidates []string) string {
	n := utf8.RuneCountInString(word)
	limit := min(max(n/3, 1), 3)
	best, bestD := "", limit+1
	lw := strings.ToLower(word)
	for _, c := range candidates {
		if c == word {
			continue
		}
		d := editDistance(lw, strings.ToLower(c))
		if d < bestD && d < n {
			best, bestD = c, d
		}
	}
	return best
}

// didYouMean is suggest formatted as the end of a message: `; did you mean "run"?`, or "".
func didYouMean(word string, candidates []string) string {
	if s := suggest(word, candidates); s != "" {
		return `; did you mean "` + s + `"?`
	}
	return ""
}

// orList ends a message with a suggestion when there is one, else with the list of what exists:
// `; did you mean "status"?` or `; it has status, exit_code, outputs, attempts`.
func orList(word string, candidates []string, intro string) string {
	if s := didYouMean(word, candidates); s != "" {
		return s
	}
	if len(candidates) == 0 {
		return ""
	}
	return "; " + intro + " " + strings.Join(candidates, ", ")
}
