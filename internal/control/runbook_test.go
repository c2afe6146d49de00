package control_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/notionsync/notionsync/internal/control"
	"github.com/notionsync/notionsync/jobs"
	"github.com/notionsync/notionsync/tokens"
)

// runbookExamples maps the marker of an API example in docs/runbook.md
// ("<!-- api-example: NAME -->" on the line before a ```json fence) to a
// fresh value of the type the API answers with.
var runbookExamples = map[string]func() any{
	// GET /api/v1/connections/{id}, with the sync state the scheduler's
	// SyncInfo returns (jobs.SyncState).
	"connection": func() any {
		return new(struct {
			control.ConnectionView
			Sync *jobs.SyncState `json:"sync"`
		})
	},
	// GET /api/v1/connections/{id}/events (handleEvents).
	"events": func() any {
		return new(struct {
			ConnectionID string         `json:"connection_id"`
			Events       []tokens.Event `json:"events"`
		})
	},
}

// TestRunbookAPIExamples decodes every JSON example of the runbook into the
// API's own types, refusing unknown fields: an example written with Go's
// field names ("Cursor", "PagesSynced") instead of the JSON ones, or naming
// a field the API no longer has, fails here. Every ```json block must carry
// a marker, so a new example cannot slip past the check.
func TestRunbookAPIExamples(t *testing.T) {
	t.Parallel()
	const path = "../../docs/runbook.md"
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type example struct {
		name, body string
		line       int
	}
	var examples []example
	sc := bufio.NewScanner(f)
	var prev string
	var cur *example
	var body strings.Builder
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case cur != nil && trimmed == "```":
			cur.body = body.String()
			examples = append(examples, *cur)
			cur = nil
		case cur != nil:
			body.WriteString(line + "\n")
		case trimmed == "```json":
			name, ok := strings.CutPrefix(prev, "<!-- api-example: ")
			name, ok2 := strings.CutSuffix(name, " -->")
			if !ok || !ok2 {
				t.Errorf("%s:%d: a json block without a <!-- api-example: NAME --> line before it", path, n)
			}
			cur = &example{name: name, line: n}
			body.Reset()
		}
		prev = trimmed
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if cur != nil {
		t.Fatalf("%s:%d: json block not closed", path, cur.line)
	}
	seen := map[string]bool{}
	for _, ex := range examples {
		mk, ok := runbookExamples[ex.name]
		if !ok {
			t.Errorf("%s:%d: unknown api-example %q", path, ex.line, ex.name)
			continue
		}
		seen[ex.name] = true
		dec := json.NewDecoder(bytes.NewReader([]byte(ex.body)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(mk()); err != nil {
			t.Errorf("%s:%d: the %s example is not what the API answers: %v", path, ex.line, ex.name, err)
		}
		if dec.More() {
			t.Errorf("%s:%d: the %s example holds more than one JSON value", path, ex.line, ex.name)
		}
	}
	for name := range runbookExamples {
		if !seen[name] {
			t.Errorf("%s: no %s example left; remove it from runbookExamples", path, name)
		}
	}
}
