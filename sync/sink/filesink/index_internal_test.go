package filesink

import (
	"slices"
	"testing"
)

func TestCmpNatural(t *testing.T) {
	got := []string{"page 10", "page 9", "page 1b", "page 1", "page", "page 009x", "alpha", "page 1a"}
	slices.SortFunc(got, cmpNatural)
	want := []string{"alpha", "page", "page 1", "page 1a", "page 1b", "page 9", "page 009x", "page 10"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}
