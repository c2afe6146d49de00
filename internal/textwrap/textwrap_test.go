package textwrap_test

import (
	"slices"
	"testing"

	"github.com/notionsync/notionsync/internal/textwrap"
)

func TestWrap(t *testing.T) {
	for _, tc := range []struct {
		in    string
		width int
		want  []string
	}{
		{"", 10, nil},
		{"one two three", 7, []string{"one two", "three"}},
		{"one  two\nthree", 20, []string{"one two three"}},
		{"a verylongwordindeed b", 5, []string{"a", "verylongwordindeed", "b"}},
		{"exactly ten", 11, []string{"exactly ten"}},
		{"exactly ten", 10, []string{"exactly", "ten"}},
	} {
		if got := textwrap.Wrap(tc.in, tc.width); !slices.Equal(got, tc.want) {
			t.Errorf("Wrap(%q, %d) = %q, want %q", tc.in, tc.width, got, tc.want)
		}
	}
}
