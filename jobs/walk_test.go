package jobs

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"testing"

	"github.com/notionsync/notionsync/sync/sink"
)

func testID(n int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", n) }

func block(n int, kids bool) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"object":"block","id":%q,"type":"toggle","has_children":%v,"toggle":{}}`, testID(n), kids))
}

var testCaps = walkCaps{blocks: 1000, requests: 100, bytes: 1 << 20, depth: 20}

// However the children lists were built, assemble visits each block's
// children once: a cycle cannot make it loop.
func TestAssembleSurvivesCycles(t *testing.T) {
	root := testID(0)
	children := map[string][]json.RawMessage{
		root:      {block(1, true)},
		testID(1): {block(0, true), block(2, true)}, // lists the page: a cycle
		testID(2): {block(1, true)},                 // lists its parent
	}
	bs, err := assemble(root, children)
	if err != nil {
		t.Fatal(err)
	}
	if n := countTree(bs); n > 5 {
		t.Fatalf("%d blocks assembled from 5 entries", n)
	}
}

// A deep tree is assembled without recursion, to the last level.
func TestAssembleDeepChain(t *testing.T) {
	const depth = 100_000
	children := map[string][]json.RawMessage{}
	for i := range depth {
		children[testID(i)] = []json.RawMessage{block(i+1, i+1 < depth)}
	}
	bs, err := assemble(testID(0), children)
	if err != nil {
		t.Fatal(err)
	}
	if n := countTree(bs); n != depth {
		t.Fatalf("%d blocks, want %d", n, depth)
	}
}

func countTree(bs []sink.Block) int {
	n := len(bs)
	for _, b := range bs {
		n += countTree(b.Children)
	}
	return n
}

// A walk resumed from its stored chunks is the walk that stored them; a
// damaged checkpoint starts over (and is dropped on the next save).
func TestResumeTreeWalkReplaysChunks(t *testing.T) {
	page := testID(0)
	w := newTreeWalk(page, 42, testCaps)
	chunks := []treeChunk{
		{Parent: page, Next: "c1", Results: []json.RawMessage{block(1, true), block(2, false)}},
		{Parent: page, Cursor: "c1", Results: []json.RawMessage{block(3, true), block(1, true)}}, // 1 again: a repeat
		{Parent: testID(1), Results: []json.RawMessage{block(4, false)}},
	}
	stored := map[string]string{treeEditedField: "42"}
	for i, c := range chunks {
		if err := w.apply(c, nil); err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(c)
		stored[strconv.Itoa(i)] = string(b)
	}
	r, resumed := resumeTreeWalk(page, 42, testCaps, stored)
	if !resumed || r.reset || r.seq != 3 {
		t.Fatalf("resumed %v reset %v seq %d", resumed, r.reset, r.seq)
	}
	if fmt.Sprint(r.queue) != fmt.Sprint(w.queue) || r.blocks != w.blocks || r.requests != 3 || r.notes.repeats != 1 {
		t.Fatalf("replayed walk differs: queue %v/%v blocks %d/%d requests %d repeats %d", r.queue, w.queue, r.blocks, w.blocks, r.requests, r.notes.repeats)
	}
	// Another version, a gap, a damaged chunk: start over.
	for name, m := range map[string]map[string]string{
		"version": {treeEditedField: "41", "0": stored["0"]},
		"gap":     {treeEditedField: "42", "0": stored["0"], "2": stored["2"]},
		"damaged": {treeEditedField: "42", "0": "{"},
		"foreign": {treeEditedField: "42", "0": stored["2"]},
	} {
		r, resumed := resumeTreeWalk(page, 42, testCaps, m)
		if resumed || !r.reset || r.requests != 0 || len(r.queue) != 1 {
			t.Errorf("%s: resumed %v reset %v requests %d", name, resumed, r.reset, r.requests)
		}
	}
}

// Each cap ends the walk with a CapError naming it.
func TestWalkCaps(t *testing.T) {
	page := testID(0)
	many := func(from, n int) []json.RawMessage {
		var out []json.RawMessage
		for i := range n {
			out = append(out, block(from+i, false))
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		caps   walkCaps
		chunks []treeChunk
		cap    string
	}{
		{"blocks", walkCaps{blocks: 5, requests: 100, bytes: 1 << 20, depth: 20},
			[]treeChunk{{Parent: page, Results: many(1, 6)}}, CapBlocks},
		{"bytes", walkCaps{blocks: 100, requests: 100, bytes: 200, depth: 20},
			[]treeChunk{{Parent: page, Results: many(1, 3)}}, CapBytes},
		{"same cursor", testCaps,
			[]treeChunk{{Parent: page, Next: "a", Results: many(1, 1)}, {Parent: page, Cursor: "a", Next: "a"}}, CapRepeatedCursor},
		{"cursor cycle", testCaps,
			[]treeChunk{{Parent: page, Next: "a"}, {Parent: page, Cursor: "a", Next: "b"}, {Parent: page, Cursor: "b", Next: "a"}}, CapRepeatedCursor},
	} {
		w := newTreeWalk(page, 1, tc.caps)
		var err error
		for _, c := range tc.chunks {
			if err = w.apply(c, nil); err != nil {
				break
			}
		}
		var ce *CapError
		if !errors.As(err, &ce) || ce.Cap != tc.cap || !errors.Is(err, ErrObjectCap) {
			t.Errorf("%s: err %v, want the %s cap", tc.name, err, tc.cap)
		}
	}
	w := newTreeWalk(page, 1, walkCaps{blocks: 100, requests: 2, bytes: 1 << 20, depth: 20})
	_ = w.apply(treeChunk{Parent: page, Next: "a"}, nil)
	_ = w.apply(treeChunk{Parent: page, Cursor: "a", Next: "b"}, nil)
	var ce *CapError
	if _, _, err := w.next(); !errors.As(err, &ce) || ce.Cap != CapRequests {
		t.Errorf("requests: %v", err)
	}
}

// FuzzTreeWalkApply: whatever a listing answers, applying it ends in the
// walk's bounds or an error, never a panic, and never grows past a cap.
func FuzzTreeWalkApply(f *testing.F) {
	f.Add([]byte(`{"results":[{"object":"block","id":"00000000-0000-4000-8000-000000000000","type":"toggle","has_children":true}],"has_more":true,"next_cursor":"x"}`))
	f.Add([]byte(`{"results":{"id":42},"has_more":"yes","next_cursor":7}`))
	f.Add([]byte(`{"results":[{"object":"block","id":"../x","has_children":true}],"has_more":false}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		caps := walkCaps{blocks: 50, requests: 10, bytes: 1 << 16, depth: 5}
		w := newTreeWalk(testID(0), 1, caps)
		for range 12 {
			item, more, err := w.next()
			if err != nil || !more {
				return
			}
			l, err := parseList(data)
			if err != nil {
				return
			}
			if err := w.apply(treeChunk{Parent: item.ID, Cursor: item.Cursor, Next: l.next(), Results: l.Results}, nil); err != nil {
				return
			}
			if w.blocks > caps.blocks || w.bytes > caps.bytes || w.requests > caps.requests {
				t.Fatalf("walk past its caps: %d blocks, %d bytes, %d requests", w.blocks, w.bytes, w.requests)
			}
		}
	})
}
