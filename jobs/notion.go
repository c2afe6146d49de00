package jobs

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/notionsync/notionsync/sync/notionclient"
)

// ErrMalformed wraps every error about a Notion answer that is not the JSON
// it should be (truncated, not an object, a list without its cursor).
var ErrMalformed = errors.New("malformed Notion response")

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
	// Parent is read for data sources (Notion-Version 2025-09-03), whose
	// parent is their database.
	Parent struct {
		Type       string `json:"type"`
		DatabaseID string `json:"database_id"`
	} `json:"parent"`
}

func (o objectHead) deleted() bool { return o.Archived || o.InTrash }

func parseHead(raw json.RawMessage) (objectHead, error) {
	var h objectHead
	if err := json.Unmarshal(raw, &h); err != nil {
		return h, fmt.Errorf("%w: object: %w", ErrMalformed, err)
	}
	if h.ID == "" {
		return h, fmt.Errorf("%w: object without an id", ErrMalformed)
	}
	if err := validNotionID(h.ID); err != nil {
		return h, err
	}
	if h.Object == "data_source" && h.Parent.DatabaseID != "" && validNotionID(h.Parent.DatabaseID) != nil {
		return h, fmt.Errorf("%w: data source %s: database parent: %w", ErrMalformed, h.ID, validNotionID(h.Parent.DatabaseID))
	}
	return h, nil
}

// listResponse is Notion's paginated list shape.
type listResponse struct {
	Results    []json.RawMessage `json:"results"`
	HasMore    bool              `json:"has_more"`
	NextCursor *string           `json:"next_cursor"`
	// RequestStatus is set by database and data source queries: type
	// "incomplete" (reason query_result_limit_reached) when Notion stopped
	// the query at its result limit (10,000 rows) and the rows after it
	// were never listed.
	RequestStatus *struct {
		Type             string `json:"type"`
		IncompleteReason string `json:"incomplete_reason,omitempty"`
	} `json:"request_status,omitempty"`
}

// incomplete reports whether a query's results stop at Notion's result
// limit.
func (l listResponse) incomplete() bool {
	return l.RequestStatus != nil && l.RequestStatus.Type == "incomplete"
}

func parseList(raw json.RawMessage) (listResponse, error) {
	var l listResponse
	if err := json.Unmarshal(raw, &l); err != nil {
		return l, fmt.Errorf("%w: list: %w", ErrMalformed, err)
	}
	if l.HasMore && (l.NextCursor == nil || *l.NextCursor == "") {
		return l, fmt.Errorf("%w: list with has_more but no next_cursor", ErrMalformed)
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

// cursorRefused reports whether Notion answered a paginated request with
// the 400 it gives for a start_cursor it does not accept (expired, from
// another listing, garbled in storage): the listing must start over.
func cursorRefused(err error) bool {
	var ae *notionclient.APIError
	return errors.As(err, &ae) && ae.Status == http.StatusBadRequest && ae.Code == "validation_error"
}
