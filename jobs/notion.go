package jobs

import (
	"encoding/json"
	"fmt"
	"time"
)

// objectHead is the part of a Notion page, database or block object the
// jobs look at. Everything else is kept as raw JSON for the sink.
type objectHead struct {
	Object         string    `json:"object"`
	ID             string    `json:"id"`
	Type           string    `json:"type"`
	LastEditedTime time.Time `json:"last_edited_time"`
	Archived       bool      `json:"archived"`
	InTrash        bool      `json:"in_trash"`
	HasChildren    bool      `json:"has_children"`
}

func (o objectHead) deleted() bool { return o.Archived || o.InTrash }

func parseHead(raw json.RawMessage) (objectHead, error) {
	var h objectHead
	if err := json.Unmarshal(raw, &h); err != nil {
		return h, fmt.Errorf("malformed Notion object: %w", err)
	}
	if h.ID == "" {
		return h, fmt.Errorf("malformed Notion object: no id")
	}
	return h, nil
}

// listResponse is Notion's paginated list shape.
type listResponse struct {
	Results    []json.RawMessage `json:"results"`
	HasMore    bool              `json:"has_more"`
	NextCursor *string           `json:"next_cursor"`
}

func parseList(raw json.RawMessage) (listResponse, error) {
	var l listResponse
	if err := json.Unmarshal(raw, &l); err != nil {
		return l, fmt.Errorf("malformed Notion list: %w", err)
	}
	if l.HasMore && (l.NextCursor == nil || *l.NextCursor == "") {
		return l, fmt.Errorf("malformed Notion list: has_more without next_cursor")
	}
	return l, nil
}

func (l listResponse) next() string {
	if !l.HasMore || l.NextCursor == nil {
		return ""
	}
	return *l.NextCursor
}

// upToDate reports whether a stored object already holds the version of an
// object last edited at lastEdited. Notion rounds last_edited_time down to
// the minute, so an equal timestamp proves nothing unless the stored copy
// was fetched after that minute ended (plus a margin for clock skew).
func upToDate(storedEdited, storedSynced, lastEdited time.Time) bool {
	if storedEdited.IsZero() || lastEdited.IsZero() {
		return false
	}
	if storedEdited.After(lastEdited) {
		return true
	}
	return storedEdited.Equal(lastEdited) && !storedSynced.Before(lastEdited.Add(time.Minute+clockSkew))
}

// clockSkew is the assumed bound on the difference between Notion's clock
// and ours.
const clockSkew = 5 * time.Second
