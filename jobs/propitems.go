package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
)

// Notion cuts a page's relation, people, rich_text and title values at 25
// items and says so with has_more: true; a rollup over such a relation is
// computed over the 25 references the page carries and says nothing. The
// whole value comes from GET /v1/pages/{id}/properties/{property_id}, a
// paginated list of property items (for a rollup, the true value is the
// list's property_item.rollup). Storing the page object as fetched would
// keep 25 ids for ever without a word, so completeProperties replaces the
// cut values before the page reaches the sink.

// propertyItemPageSize is the page_size of property item listings (Notion's
// maximum): a value of n items costs ceil(n/100) requests.
const propertyItemPageSize = 100

// listTypes are the property types whose page values Notion truncates.
var listTypes = []string{"relation", "people", "rich_text", "title"}

// propertyHead is what completeProperties reads of a property value.
type propertyHead struct {
	ID      string `json:"id"`
	Type    string `json:"type"`
	HasMore bool   `json:"has_more"`
}

// propertyItemList is one page of a property item listing.
type propertyItemList struct {
	Object       string                       `json:"object"`
	Results      []map[string]json.RawMessage `json:"results"`
	HasMore      bool                         `json:"has_more"`
	NextCursor   *string                      `json:"next_cursor"`
	PropertyItem map[string]json.RawMessage   `json:"property_item"`
}

// completeProperties returns the page object raw with every property value
// that says has_more: true replaced by its whole list (has_more cleared),
// and, when a relation was cut, every rollup replaced by the true value
// (the page object does not say which relation a rollup rolls up, so all
// of them are asked: a rollup over an uncut relation costs one listing for
// nothing). A page without a cut value is returned unchanged, at no
// request. It returns how many listing requests it made. A permanent
// answer, a repeated cursor or more than MaxObjectRequests listings end it
// with a permanent error (the page is recorded as a per-object error); any
// other failure is returned as is (the task is retried).
func (h *Handlers) completeProperties(ctx context.Context, conn, pageID string, raw json.RawMessage) (json.RawMessage, int, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, 0, fmt.Errorf("%w: page: %w", ErrMalformed, err)
	}
	var props map[string]json.RawMessage
	if p, ok := obj["properties"]; ok {
		if err := json.Unmarshal(p, &props); err != nil {
			return nil, 0, fmt.Errorf("%w: page properties: %w", ErrMalformed, err)
		}
	}
	heads := make(map[string]propertyHead, len(props))
	var cut []string
	relationCut := false
	for name, v := range props {
		var ph propertyHead
		if err := json.Unmarshal(v, &ph); err != nil {
			return nil, 0, fmt.Errorf("%w: property %q: %w", ErrMalformed, name, err)
		}
		heads[name] = ph
		if ph.HasMore && slices.Contains(listTypes, ph.Type) {
			cut = append(cut, name)
			relationCut = relationCut || ph.Type == "relation"
		}
	}
	if len(cut) == 0 {
		return raw, 0, nil
	}
	if relationCut {
		for name, ph := range heads {
			if ph.Type == "rollup" {
				cut = append(cut, name)
			}
		}
	}
	slices.Sort(cut) // a deterministic request order
	requests := 0
	for _, name := range cut {
		ph := heads[name]
		var value map[string]json.RawMessage
		if err := json.Unmarshal(props[name], &value); err != nil {
			return nil, requests, fmt.Errorf("%w: property %q: %w", ErrMalformed, name, err)
		}
		items, pi, n, err := h.listPropertyItems(ctx, conn, pageID, ph, requests)
		requests += n
		if err != nil {
			return nil, requests, err
		}
		if ph.Type == "rollup" {
			rollup, ok := pi["rollup"]
			if !ok {
				return nil, requests, fmt.Errorf("%w: page %s property %q: property item list without property_item.rollup", ErrMalformed, pageID, name)
			}
			value["rollup"] = rollup
		} else {
			list, err := json.Marshal(items)
			if err != nil {
				return nil, requests, err
			}
			value[ph.Type] = list
			value["has_more"] = json.RawMessage("false")
		}
		if props[name], err = json.Marshal(value); err != nil {
			return nil, requests, err
		}
	}
	p, err := json.Marshal(props)
	if err != nil {
		return nil, requests, err
	}
	obj["properties"] = p
	out, err := json.Marshal(obj)
	return out, requests, err
}

// listPropertyItems pages through the property item list of property ph of
// page pageID and returns the items' values (the relation, user or rich
// text object of each item) and the last page's property_item. done is how
// many listing requests the page's other properties made: together they
// stay within MaxObjectRequests.
func (h *Handlers) listPropertyItems(ctx context.Context, conn, pageID string, ph propertyHead, done int) ([]json.RawMessage, map[string]json.RawMessage, int, error) {
	object := "page " + pageID
	listing := fmt.Sprintf("property %s of page %s", ph.ID, pageID)
	base := "/v1/pages/" + url.PathEscape(pageID) + "/properties/" + url.PathEscape(ph.ID) + fmt.Sprintf("?page_size=%d", propertyItemPageSize)
	var (
		items     = []json.RawMessage{} // an empty list stays a list
		cursor    string
		seen      = map[string]bool{}
		requests  int
		restarted bool
	)
	for {
		if done+requests >= h.cfg.MaxObjectRequests {
			return nil, nil, requests, &CapError{Object: object, Cap: CapRequests, Limit: int64(h.cfg.MaxObjectRequests)}
		}
		path := base
		if cursor != "" {
			path += "&start_cursor=" + url.QueryEscape(cursor)
		}
		requests++
		raw, err := h.cfg.Notion.Do(ctx, conn, http.MethodGet, path, nil)
		if cursor != "" && cursorRefused(err) {
			if restarted {
				// Transient: the page is retried with backoff.
				return nil, nil, requests, fmt.Errorf("%s: %w: %w", listing, ErrCursorExpiring, err)
			}
			// An expired cursor: the list starts over, once.
			items, cursor, restarted = []json.RawMessage{}, "", true
			clear(seen)
			continue
		}
		if permanentAnswer(err, cursor != "") {
			return nil, nil, requests, &PermanentError{Object: listing, Err: err}
		}
		if err != nil {
			return nil, nil, requests, fmt.Errorf("%s: %w", listing, err)
		}
		var l propertyItemList
		if err := json.Unmarshal(raw, &l); err != nil {
			return nil, nil, requests, fmt.Errorf("%s: %w: %w", listing, ErrMalformed, err)
		}
		if l.Object != "list" {
			// A property item list is always a list for the cut types and
			// for rollups; a single item means the property is not one.
			return nil, nil, requests, fmt.Errorf("%s: %w: answer is a %q, not a list", listing, ErrMalformed, l.Object)
		}
		for _, it := range l.Results {
			var typ string
			if err := json.Unmarshal(it["type"], &typ); err != nil {
				return nil, nil, requests, fmt.Errorf("%s: %w: item type: %w", listing, ErrMalformed, err)
			}
			v, ok := it[typ]
			if !ok {
				return nil, nil, requests, fmt.Errorf("%s: %w: item without its %q value", listing, ErrMalformed, typ)
			}
			items = append(items, v)
		}
		if !l.HasMore {
			return items, l.PropertyItem, requests, nil
		}
		if l.NextCursor == nil || *l.NextCursor == "" {
			return nil, nil, requests, fmt.Errorf("%s: %w: list with has_more but no next_cursor", listing, ErrMalformed)
		}
		if seen[*l.NextCursor] {
			return nil, nil, requests, &CapError{Object: object, Cap: CapRepeatedCursor, Listing: listing}
		}
		seen[*l.NextCursor] = true
		cursor = *l.NextCursor
	}
}
