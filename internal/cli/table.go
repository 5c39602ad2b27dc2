package cli

import (
	"bufio"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/playbookhq/playbook/pkg/run"
)

// table lays out rows in columns two spaces apart, as text/tabwriter does, but measures a cell by the
// characters people see, so that a coloured cell takes the room of its text, and ends no line with
// spaces (an empty last cell leaves none behind). The zero table is empty and ready to use.
type table struct {
	rows [][]cell
}

// cell is one cell of a table: its text and the ANSI colour it is painted in ("" = none).
type cell struct {
	text  string
	color string
}

// add appends a row of plain cells.
func (t *table) add(cells ...string) {
	row := make([]cell, len(cells))
	for i, c := range cells {
		row[i] = cell{text: c}
	}
	t.rows = append(t.rows, row)
}

// paint colours cell col of the last row; a col outside it does nothing.
func (t *table) paint(col int, color string) {
	if len(t.rows) == 0 {
		return
	}
	row := t.rows[len(t.rows)-1]
	if col >= 0 && col < len(row) {
		row[col].color = color
	}
}

// write prints the table on w in one write, with the colours when color is set.
func (t *table) write(w io.Writer, color bool) error {
	var widths []int
	for _, row := range t.rows {
		for i, c := range row {
			if i == len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], utf8.RuneCountInString(c.text))
		}
	}
	bw := bufio.NewWriter(w)
	var line strings.Builder
	for _, row := range t.rows {
		line.Reset()
		pad := 0 // spaces owed before the next cell: written only if a cell with text follows
		for i, c := range row {
			if c.text == "" {
				pad += widths[i] + 2
				continue
			}
			line.WriteString(strings.Repeat(" ", pad))
			if color && c.color != "" {
				line.WriteString(c.color + c.text + ansiReset)
			} else {
				line.WriteString(c.text)
			}
			pad = widths[i] - utf8.RuneCountInString(c.text) + 2
		}
		line.WriteByte('\n')
		bw.WriteString(line.String())
	}
	return bw.Flush()
}

// colorOn reports whether a command's output gets colour: only on a terminal, and never with NO_COLOR
// set to anything (https://no-color.org).
func colorOn(sys *System) bool {
	return sys.OutIsTerminal && sys.getenv("NO_COLOR") == ""
}

// stampLocation is the zone a command shows times in: local time on a terminal, for the person reading
// it; else UTC, as stored, so that what a script or a log file gets does not depend on the machine's
// zone.
func stampLocation(sys *System) *time.Location {
	if sys.OutIsTerminal {
		return time.Local
	}
	return time.UTC
}

// formatStamp shows a time to the second in loc, with the zone's name ("2026-11-26 07:04:52 UTC",
// "2026-11-26 08:04:52 CET"); "-" for the zero time.
func formatStamp(t time.Time, loc *time.Location) string {
	if t.IsZero() {
		return "-"
	}
	return t.In(loc).Format("2006-01-02 15:04:05 MST")
}

// statusWord is a status as a sentence says it: "timed out" for timed_out. Tables and JSON keep the
// recorded form, the one --status and SQL take.
func statusWord(s run.Status) string {
	return strings.ReplaceAll(string(s), "_", " ")
}
