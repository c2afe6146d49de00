package jobs

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/notionsync/notionsync/sync/sink"
	"github.com/notionsync/notionsync/sync/sink/record"
)

// A page's block tree comes from Notion one listing request at a time, and
// Notion (or whatever answers in its place) decides what those answers
// hold: a block may list itself or an ancestor among its children, a
// listing may say has_more for ever, a body may be huge. The walk below
// therefore
//
//   - fetches each block's children once: a block id listed a second time
//     (a cycle, or a duplicate) is skipped and recorded as a note;
//   - is a queue, not a recursion, and so is assemble;
//   - refuses a cursor it was already given in the same listing;
//   - stops at per-object caps on blocks, listing requests and bytes
//     (Config.MaxObjectBlocks, MaxObjectRequests, MaxObjectBytes) with a
//     *CapError that names the cap.
//
// Its checkpoint grows by appending: each listing request is one chunk (the
// parent, the cursor it was sent with, the next cursor and the raw results),
// a field of a Redis hash. A resumed walk replays the chunks through the
// same code as the live walk, so the queue, the set of seen blocks, the
// counters and the notes are rebuilt exactly, and nothing but the chunks
// (and the page version) is ever stored.

// ErrObjectCap is matched (errors.Is) by every *CapError.
var ErrObjectCap = errors.New("object exceeds a walk cap")

// Caps a walk or a listing can stop at (CapError.Cap).
const (
	CapBlocks         = "MaxObjectBlocks"
	CapRequests       = "MaxObjectRequests"
	CapBytes          = "MaxObjectBytes"
	CapRepeatedCursor = "repeated cursor"
)

// capVars names the worker's configuration variable of each cap, for the
// operator who reads the error in a connection's status.
var capVars = map[string]string{
	CapBlocks:   "NOTIONSYNC_MAX_OBJECT_BLOCKS",
	CapRequests: "NOTIONSYNC_MAX_OBJECT_REQUESTS",
	CapBytes:    "NOTIONSYNC_MAX_OBJECT_BYTES",
}

// CapError ends the walk of a page (or the listing of a search or a
// database query) that went past one of the per-object caps, or whose
// listing repeated a cursor. The object is recorded as a per-object error
// and, for a page, not fetched again until its last_edited_time changes.
type CapError struct {
	// Object names what was walked ("page <id>", "search", "database <id>").
	Object string
	// Cap is one of CapBlocks, CapRequests, CapBytes, CapRepeatedCursor.
	Cap string
	// Limit is the cap's value (0 for CapRepeatedCursor).
	Limit int64
	// Listing is the block or database whose listing repeated its cursor.
	Listing string
}

func (e *CapError) Error() string {
	if e.Cap == CapRepeatedCursor {
		return fmt.Sprintf("%s: listing of %s repeated a pagination cursor (Notion answered has_more for ever); walk stopped", e.Object, e.Listing)
	}
	what := map[string]string{CapBlocks: "blocks", CapRequests: "listing requests", CapBytes: "bytes"}[e.Cap]
	return fmt.Sprintf("%s: walk stopped at the cap %s=%d (%s; config %s)", e.Object, e.Cap, e.Limit, what, capVars[e.Cap])
}

// Is makes errors.Is(err, ErrObjectCap) true.
func (e *CapError) Is(target error) bool { return target == ErrObjectCap }

// walkCaps are the per-object caps of one walk.
type walkCaps struct {
	blocks, requests int
	bytes            int64
	depth            int
}

// treeChunk is one listing request of a walk, as the checkpoint stores it.
type treeChunk struct {
	Parent  string            `json:"p"`
	Cursor  string            `json:"c,omitempty"` // the start_cursor it was sent with
	Next    string            `json:"n,omitempty"` // "" when the listing ended
	Results []json.RawMessage `json:"r"`
}

type treeItem struct {
	ID     string
	Cursor string
	Depth  int
}

// maxNoteIDs bounds the block ids a note names.
const maxNoteIDs = 5

// walkNotes are what a walk skipped without failing: repeated blocks and
// subtrees below the depth limit. Bounded whatever the tree.
type walkNotes struct {
	repeats, deep      int
	repeatIDs, deepIDs []string
	maxDepth           int
}

func (n *walkNotes) repeat(id string) {
	n.repeats++
	if len(n.repeatIDs) < maxNoteIDs {
		n.repeatIDs = append(n.repeatIDs, id)
	}
}

func (n *walkNotes) tooDeep(id string) {
	n.deep++
	if len(n.deepIDs) < maxNoteIDs {
		n.deepIDs = append(n.deepIDs, id)
	}
}

// String is the note recorded for a stored page ("" when there is none).
func (n walkNotes) String() string {
	var parts []string
	if n.repeats > 0 {
		parts = append(parts, fmt.Sprintf("%d block(s) listed more than once (a cycle or a duplicate) skipped: %s%s",
			n.repeats, strings.Join(n.repeatIDs, ", "), more(n.repeats, len(n.repeatIDs))))
	}
	if n.deep > 0 {
		parts = append(parts, fmt.Sprintf("children of %d block(s) at the depth limit %d (MaxBlockDepth, config NOTIONSYNC_MAX_BLOCK_DEPTH) not fetched: %s%s",
			n.deep, n.maxDepth, strings.Join(n.deepIDs, ", "), more(n.deep, len(n.deepIDs))))
	}
	return strings.Join(parts, "; ")
}

func more(total, shown int) string {
	if total > shown {
		return fmt.Sprintf(" and %d more", total-shown)
	}
	return ""
}

// treeWalk is a page's block-tree walk in progress.
type treeWalk struct {
	page   string
	edited int64 // the page version the walk belongs to (unix ms)
	caps   walkCaps

	children map[string][]json.RawMessage // fetched children by parent id
	queue    []treeItem                   // left to fetch, front first
	seen     map[string]bool              // block ids listed so far, and the page
	cursors  map[string]bool              // cursors of the listing at the queue's front
	requests int
	blocks   int
	bytes    int64
	notes    walkNotes

	// Checkpoint bookkeeping: chunks not yet in Redis, the next chunk's
	// field, and whether the stored checkpoint must be dropped first (it
	// belongs to another version, or the walk started over).
	unsaved []treeChunk
	seq     int
	reset   bool
}

func newTreeWalk(page string, edited int64, caps walkCaps) *treeWalk {
	return &treeWalk{
		page: page, edited: edited, caps: caps,
		children: map[string][]json.RawMessage{},
		queue:    []treeItem{{ID: page}},
		seen:     map[string]bool{page: true},
		cursors:  map[string]bool{},
		notes:    walkNotes{maxDepth: caps.depth},
		reset:    true,
	}
}

// Checkpoint hash fields: the page version, and one field per chunk
// (decimal sequence numbers from 0).
const treeEditedField = "e"

// resumeTreeWalk rebuilds a walk from its stored checkpoint (a Redis hash,
// as HGETALL returns it) if it belongs to version edited of the page;
// otherwise, or when the checkpoint is damaged or hits a cap on replay, it
// returns a fresh walk that drops the stored one on its first save.
func resumeTreeWalk(page string, edited int64, caps walkCaps, stored map[string]string) (w *treeWalk, resumed bool) {
	fresh := newTreeWalk(page, edited, caps)
	if len(stored) == 0 || stored[treeEditedField] != strconv.FormatInt(edited, 10) {
		return fresh, false
	}
	seqs := make([]int, 0, len(stored))
	for k := range stored {
		if n, err := strconv.Atoi(k); err == nil && n >= 0 {
			seqs = append(seqs, n)
		}
	}
	slices.Sort(seqs)
	w = newTreeWalk(page, edited, caps)
	w.reset = false
	for i, n := range seqs {
		var c treeChunk
		if n != i || json.Unmarshal([]byte(stored[strconv.Itoa(n)]), &c) != nil {
			return fresh, false
		}
		if err := w.apply(c, nil); err != nil {
			return fresh, false
		}
	}
	w.seq = len(seqs)
	return w, len(seqs) > 0
}

// next returns the listing request to send next, or false when the walk is
// complete. It fails with a *CapError when the request cap is used up.
func (w *treeWalk) next() (treeItem, bool, error) {
	if len(w.queue) == 0 {
		return treeItem{}, false, nil
	}
	if w.requests >= w.caps.requests {
		return treeItem{}, false, w.capErr(CapRequests, int64(w.caps.requests))
	}
	return w.queue[0], true, nil
}

func (w *treeWalk) capErr(name string, limit int64) *CapError {
	return &CapError{Object: "page " + w.page, Cap: name, Limit: limit}
}

// apply takes the answer to the request at the queue's front into the
// walk. onChild, when set, is called for each child page and child
// database found (a replay passes nil: those were handed out already). It
// fails with ErrMalformed for a block that is not a Notion object with a
// Notion id, and with a *CapError for a repeated cursor or a cap passed.
func (w *treeWalk) apply(c treeChunk, onChild func(objectHead)) error {
	if len(w.queue) == 0 || w.queue[0].ID != c.Parent || w.queue[0].Cursor != c.Cursor {
		return fmt.Errorf("%w: checkpoint chunk for %s does not follow the walk", ErrMalformed, c.Parent)
	}
	item := w.queue[0]
	w.requests++
	var more []treeItem
	for _, r := range c.Results {
		w.bytes += int64(len(r))
		b, err := parseHead(r)
		if err != nil {
			return fmt.Errorf("block in the children of %s: %w", item.ID, err)
		}
		if w.seen[b.ID] {
			w.notes.repeat(b.ID)
			continue
		}
		w.seen[b.ID] = true
		w.blocks++
		w.children[item.ID] = append(w.children[item.ID], r)
		switch {
		case b.Type == "child_page" || b.Type == "child_database":
			if onChild != nil {
				onChild(b)
			}
		case b.HasChildren && item.Depth+1 < w.caps.depth:
			more = append(more, treeItem{ID: b.ID, Depth: item.Depth + 1})
		case b.HasChildren:
			w.notes.tooDeep(b.ID)
		}
	}
	switch {
	case w.blocks > w.caps.blocks:
		return w.capErr(CapBlocks, int64(w.caps.blocks))
	case w.bytes > w.caps.bytes:
		return w.capErr(CapBytes, w.caps.bytes)
	}
	rest := w.queue[1:]
	if c.Next != "" {
		if c.Next == c.Cursor || w.cursors[c.Next] {
			return &CapError{Object: "page " + w.page, Cap: CapRepeatedCursor, Listing: item.ID}
		}
		w.cursors[c.Next] = true
		rest = append([]treeItem{{ID: item.ID, Cursor: c.Next, Depth: item.Depth}}, rest...)
	} else {
		clear(w.cursors)
	}
	w.queue = append(rest, more...)
	return nil
}

// restart drops everything fetched: the walk starts over from the page
// (and its stored checkpoint is dropped on the next save).
func (w *treeWalk) restart() {
	*w = *newTreeWalk(w.page, w.edited, w.caps)
}

// assemble builds the page's block tree from the fetched children lists,
// iteratively and visiting each block's children once: however the lists
// were built, a cycle cannot make it loop and a deep tree cannot overflow
// the stack.
func assemble(root string, children map[string][]json.RawMessage) ([]sink.Block, error) {
	if len(children[root]) == 0 {
		return nil, nil
	}
	type frame struct {
		raws []json.RawMessage
		i    int
		out  []sink.Block
	}
	visited := map[string]bool{root: true}
	stack := []*frame{{raws: children[root], out: make([]sink.Block, 0, len(children[root]))}}
	for {
		f := stack[len(stack)-1]
		if f.i == len(f.raws) {
			stack = stack[:len(stack)-1]
			if len(stack) == 0 {
				return f.out, nil
			}
			p := stack[len(stack)-1]
			p.out[len(p.out)-1].Children = f.out
			continue
		}
		r := f.raws[f.i]
		f.i++
		b, err := record.BlockFromRaw(r)
		if err != nil {
			return nil, err
		}
		f.out = append(f.out, b)
		if kids := children[b.ID]; b.HasChildren && len(kids) > 0 && !visited[b.ID] {
			visited[b.ID] = true
			stack = append(stack, &frame{raws: kids, out: make([]sink.Block, 0, len(kids))})
		}
	}
}

// validNotionID fails with ErrMalformed (and sink.ErrInvalidID) for an id
// that is not a Notion id: such ids would end up in request paths, Redis
// keys, task ids and file names.
func validNotionID(id string) error {
	if _, err := sink.NormalizeID(id); err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return nil
}
