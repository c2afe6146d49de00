// Package textwrap breaks prose into lines for generated text (the
// configuration reference, --help-env, .env.example). Pure functions, safe
// for concurrent use.
package textwrap

import "strings"

// Wrap breaks s into lines of at most width characters at spaces where it
// can; a word longer than width gets a line of its own. Runs of whitespace,
// newlines included, count as one space.
func Wrap(s string, width int) []string {
	var lines []string
	line := ""
	for _, word := range strings.Fields(s) {
		switch {
		case line == "":
			line = word
		case len(line)+1+len(word) <= width:
			line += " " + word
		default:
			lines = append(lines, line)
			line = word
		}
	}
	if line != "" {
		lines = append(lines, line)
	}
	return lines
}
