package record_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/notionsync/notionsync/sync/sink/record"
)

func TestNormalizeID(t *testing.T) {
	const want = "59833787-2cf9-4fdf-8782-e53db20768a5"
	for _, in := range []string{want, "598337872cf94fdf8782e53db20768a5", "59833787-2CF9-4FDF-8782-E53DB20768A5"} {
		got, err := record.NormalizeID(in)
		if err != nil || got != want {
			t.Errorf("NormalizeID(%q) = %q, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "..", "../59833787-2cf9-4fdf-8782-e53db20768a5", "59833787-2cf9-4fdf-8782-e53db20768a",
		"5983378-72cf9-4fdf-8782-e53db20768a5", "59833787-2cf9-4fdf-8782-e53db20768a5-", "59833787-2cf9-4fdf-8782-e53db20768a50",
		"59833787/2cf9-4fdf-8782-e53db20768a5", "x9833787-2cf9-4fdf-8782-e53db20768a5", "5983378７-2cf9-4fdf-8782-e53db20768a5"} {
		if _, err := record.NormalizeID(in); !errors.Is(err, record.ErrInvalidID) {
			t.Errorf("NormalizeID(%q): %v", in, err)
		}
	}
}

func TestVersionOrder(t *testing.T) {
	base := time.Date(2024, 3, 2, 17, 45, 0, 0, time.UTC)
	v := func(e, o time.Duration) record.Version {
		return record.Version{EditedAt: base.Add(e), ObservedAt: base.Add(o)}
	}
	tests := []struct {
		in, stored record.Version
		want       bool
	}{
		{v(time.Minute, 0), v(0, time.Hour), true},      // newer edit wins whatever the fetch time
		{v(0, time.Hour), v(time.Minute, 0), false},     // older edit never wins
		{v(0, 2*time.Second), v(0, time.Second), true},  // same minute: later fetch wins
		{v(0, time.Second), v(0, 2*time.Second), false}, // same minute: earlier fetch loses
		{v(0, time.Second), v(0, time.Second), true},    // identical: idempotent
	}
	for _, tt := range tests {
		if got := tt.in.Supersedes(tt.stored); got != tt.want {
			t.Errorf("%v supersedes %v = %v, want %v", tt.in, tt.stored, got, tt.want)
		}
	}
	tomb := record.TombstoneVersion(base.Add(5*time.Minute + 30*time.Second + 1500))
	if tomb.EditedAt != base.Add(5*time.Minute) || tomb.ObservedAt != base.Add(5*time.Minute+30*time.Second+time.Microsecond) {
		t.Errorf("TombstoneVersion = %v", tomb)
	}
}

func TestUnsharedRules(t *testing.T) {
	base := time.Date(2024, 3, 2, 17, 45, 0, 0, time.UTC)
	st := record.State{SyncedAt: base}
	if record.UnsharedApplies(st, base.Add(-time.Second)) {
		t.Error("404 older than the last fetch applied")
	}
	if !record.UnsharedApplies(st, base) {
		t.Error("404 at the last fetch time not applied")
	}
	st.UnsharedAt = base.Add(time.Minute)
	if record.UnsharedApplies(st, base.Add(2*time.Minute)) {
		t.Error("second 404 replaced the first")
	}
	if record.ClearsUnshared(st, base.Add(time.Minute)) || !record.ClearsUnshared(st, base.Add(time.Minute+time.Microsecond)) {
		t.Error("ClearsUnshared boundary")
	}
}

func TestNormalizedDoesNotMutate(t *testing.T) {
	now := time.Date(2024, 3, 2, 17, 45, 0, 123456789, time.FixedZone("X", 3600))
	p := &record.Page{ConnectionID: "c", ID: "598337872CF94FDF8782E53DB20768A5", LastEditedTime: now, Object: json.RawMessage(`{}`)}
	n, err := p.Normalized(now)
	if err != nil {
		t.Fatal(err)
	}
	if !p.SyncedAt.IsZero() || p.ID != "598337872CF94FDF8782E53DB20768A5" {
		t.Error("Normalized changed its receiver")
	}
	if n.SyncedAt.Location() != time.UTC || n.SyncedAt.Nanosecond() != 123456000 || n.ID != "59833787-2cf9-4fdf-8782-e53db20768a5" {
		t.Errorf("normalized %+v", n)
	}
}

func TestBlocksRoundTrip(t *testing.T) {
	tree := []record.Block{
		{ID: "1", Type: "toggle", HasChildren: true, Raw: json.RawMessage(`{"id":"1","type":"toggle","has_children":true,"toggle":{"rich_text":[]}}`),
			Children: []record.Block{
				{ID: "2", Type: "paragraph", Raw: json.RawMessage(` {"id":"2","type":"paragraph","paragraph":{"children":[1]}} `)},
				{ID: "3", Type: "column", Raw: json.RawMessage(`{}`), Children: []record.Block{{ID: "4", Type: "divider"}}},
			}},
		// A top-level "children" member in Raw is replaced by the tree's.
		{ID: "5", Type: "x", Raw: json.RawMessage(`{"children":[{"id":"bogus"}],"id":"5","type":"x"}`)},
	}
	data, err := record.AppendBlocks(nil, tree)
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(data) {
		t.Fatalf("invalid JSON: %s", data)
	}
	got, err := record.DecodeBlocks(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || len(got[0].Children) != 2 || got[0].Children[0].ID != "2" || len(got[0].Children[1].Children) != 1 ||
		got[0].Children[1].Children[0].Type != "divider" || len(got[1].Children) != 0 || got[1].ID != "5" {
		t.Fatalf("tree: %+v", got)
	}
	var nested map[string]any
	if err := json.Unmarshal(got[0].Children[0].Raw, &nested); err != nil || !reflect.DeepEqual(nested["paragraph"], map[string]any{"children": []any{1.0}}) {
		t.Errorf("nested children member inside a type payload must be kept: %s", got[0].Children[0].Raw)
	}
	if string(got[1].Raw) != `{"id":"5","type":"x"}` {
		t.Errorf("raw with children member: %s", got[1].Raw)
	}
	again, err := record.AppendBlocks(nil, got)
	if err != nil {
		t.Fatal(err)
	}
	if !jsonEqual(t, again, data) {
		t.Errorf("second encoding differs:\n%s\n%s", again, data)
	}
	if _, err := record.AppendBlocks(nil, []record.Block{{Raw: json.RawMessage(`[1]`)}}); !errors.Is(err, record.ErrInvalidObject) {
		t.Errorf("array raw: %v", err)
	}
	if b, err := record.DecodeBlocks([]byte("null")); b != nil || err != nil {
		t.Errorf("null: %v %v", b, err)
	}
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}

func TestObjectFields(t *testing.T) {
	f, err := record.ObjectFields([]byte(` {"b":1,"a":{"x":[1,2]},"b":"dup"} `))
	if err != nil {
		t.Fatal(err)
	}
	if len(f) != 3 || f[0].Key != "b" || string(f[1].Value) != `{"x":[1,2]}` || string(record.Lookup(f, "b")) != "1" {
		t.Errorf("fields %+v", f)
	}
	if got := string(record.AppendObject(nil, f)); got != `{"b":1,"a":{"x":[1,2]},"b":"dup"}` {
		t.Errorf("AppendObject = %s", got)
	}
	for _, bad := range []string{``, `[]`, `{"a":1} {}`, `{"a":}`, `{"a":1`, `"s"`} {
		if _, err := record.ObjectFields([]byte(bad)); !errors.Is(err, record.ErrInvalidObject) {
			t.Errorf("ObjectFields(%q): %v", bad, err)
		}
	}
}

// FuzzBlocks checks that DecodeBlocks never panics and that whatever it
// accepts encodes back to JSON that decodes to the same tree.
func FuzzBlocks(f *testing.F) {
	f.Add([]byte(`[{"id":"1","type":"toggle","children":[{"id":"2","type":"paragraph"}]}]`))
	f.Add([]byte(`[{"children":null},{}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tree, err := record.DecodeBlocks(data)
		if err != nil {
			return
		}
		enc, err := record.AppendBlocks(nil, tree)
		if err != nil {
			t.Fatalf("re-encoding %q: %v", data, err)
		}
		again, err := record.DecodeBlocks(enc)
		if err != nil {
			t.Fatalf("decoding re-encoded %q: %v", enc, err)
		}
		enc2, err := record.AppendBlocks(nil, again)
		if err != nil || string(enc2) != string(enc) {
			t.Fatalf("not stable: %q -> %q -> %q (%v)", data, enc, enc2, err)
		}
	})
}
