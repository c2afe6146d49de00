package jobs

import (
	"encoding/json"
	"testing"
)

// FuzzParseNotion: whatever Notion (or something in front of it) answers,
// decoding a list or an object head gives a value or an error, never a
// panic, and a list that claims more results always has a cursor.
func FuzzParseNotion(f *testing.F) {
	f.Add([]byte(`{"object":"list","results":[{"object":"page","id":"x","last_edited_time":"2026-11-22T12:00:00.000Z"}],"has_more":true,"next_cursor":"c"}`))
	f.Add([]byte(`{"results":null,"has_more":true,"next_cursor":null}`))
	f.Add([]byte(`<html>403</html>`))
	f.Add([]byte(`{"object":"block","id":"b","type":"ai_block","has_children":true,"ai_block":{}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if l, err := parseList(json.RawMessage(data)); err == nil && l.HasMore && l.next() == "" {
			t.Fatal("has_more without a cursor accepted")
		}
		if h, err := parseHead(json.RawMessage(data)); err == nil && h.ID == "" {
			t.Fatal("object without id accepted")
		}
	})
}
