// Package fidelity compares what a sink holds for a connection with the
// Notion sandbox's ground truth (notionfake.GroundTruth, served by the
// sandbox at GET /_sandbox/ground-truth) and counts every way the mirror
// differs from Notion. It is a test rig: bench/fleet's fidelity scenario and
// internal/systemtest use it; nothing in the product imports it.
//
// The counts (Counts):
//
//   - Missing: a page, row or database live in Notion (shared, not in the
//     trash) that the sink does not hold, or holds only as a tombstone or
//     as unshared.
//   - Stale: held live, but with a last_edited_time older than Notion's.
//   - LiveButGone: held live, but in the trash or no longer shared in
//     Notion.
//   - Truncated: a live page whose stored property values are shorter than
//     Notion's full values (a relation, people, rich_text or title list cut
//     at 25, or still marked has_more), or whose rollup number differs.
//   - MissingDataSources: a live data source the sink holds no record of.
//   - Extra: held live, but unknown to Notion (an id the workspace never
//     had).
//   - Unfindable: a live page the sink does not hold that no API path
//     reaches (notionfake.TruthObject.Unfindable: search omits it and
//     every page above it up to the workspace). Counted apart from
//     Missing, and not a difference Exact reports: no poller can find it.
//
// A sink backend is read through a Store: FileStore (package filesink's
// layout) and PGStore (package pgsink's tables).
package fidelity

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/notionsync/notionsync/internal/notionfake"
)

// Stored is one object as a sink holds it.
type Stored struct {
	// Kind is notionfake.TruthPage, TruthDatabase or TruthDataSource.
	Kind string
	// ID is the object's id, lowercase and dashed.
	ID string
	// LastEditedTime of the stored content; zero for a bare tombstone.
	LastEditedTime time.Time
	// Deleted: a tombstone. Unshared: marked as no longer shared.
	Deleted, Unshared bool
	// Properties are a page's stored property values (object.properties).
	Properties map[string]json.RawMessage
}

// live reports whether the sink presents the object as live.
func (s Stored) live() bool { return !s.Deleted && !s.Unshared && !s.LastEditedTime.IsZero() }

// Store lists what a sink holds for one connection.
type Store interface {
	Stored(ctx context.Context, connectionID string) ([]Stored, error)
}

// Counts are the differences between a sink and the ground truth; see the
// package doc. Live is the number of live pages, rows and databases in the
// ground truth, LiveDataSources that of live data sources.
type Counts struct {
	Live               int `json:"live"`
	LiveDataSources    int `json:"live_data_sources"`
	Missing            int `json:"missing"`
	Stale              int `json:"stale"`
	LiveButGone        int `json:"live_but_gone"`
	Truncated          int `json:"truncated"`
	MissingDataSources int `json:"missing_data_sources"`
	Extra              int `json:"extra"`
	Unfindable         int `json:"unfindable"`
}

// Add adds o's counts to c (fleet totals).
func (c *Counts) Add(o Counts) {
	c.Live += o.Live
	c.LiveDataSources += o.LiveDataSources
	c.Missing += o.Missing
	c.Stale += o.Stale
	c.LiveButGone += o.LiveButGone
	c.Truncated += o.Truncated
	c.MissingDataSources += o.MissingDataSources
	c.Extra += o.Extra
	c.Unfindable += o.Unfindable
}

// Exact reports whether the sink equals the ground truth.
func (c Counts) Exact() bool {
	return c.Missing == 0 && c.Stale == 0 && c.LiveButGone == 0 && c.Truncated == 0 &&
		c.MissingDataSources == 0 && c.Extra == 0
}

func (c Counts) String() string {
	return fmt.Sprintf("live %d (+%d data sources): missing %d, stale %d, live-but-gone %d, truncated %d, missing data sources %d, extra %d; unfindable by any API %d",
		c.Live, c.LiveDataSources, c.Missing, c.Stale, c.LiveButGone, c.Truncated, c.MissingDataSources, c.Extra, c.Unfindable)
}

// Causes of a missing object, as far as the ground truth tells them.
const (
	// CausePermanentError: the sandbox answers a permanent error for the
	// object, its children or a block of it (poisoned).
	CausePermanentError = "permanent error"
	// CauseMultiSource: a database with several data sources, or a row of
	// one, which API version 2022-06-28 cannot read.
	CauseMultiSource = "multi-source database"
	// CauseOmittedFromSearch: a page search never returns.
	CauseOmittedFromSearch = "omitted from search"
	// CauseOther: none of the above.
	CauseOther = "other"
)

// Report is a comparison's result: the counts and, per count, the ids
// counted (so a test can attribute them).
type Report struct {
	Counts
	// IDs maps a count's JSON name ("missing", ...) to the ids it counted.
	IDs map[string][]string `json:"ids"`
	// MissingByCause splits Missing by cause (Cause*), the first that
	// applies in the order the constants are listed.
	MissingByCause map[string]int `json:"missing_by_cause"`
}

func (r *Report) note(count *int, name, id string) {
	*count++
	if r.IDs == nil {
		r.IDs = map[string][]string{}
	}
	r.IDs[name] = append(r.IDs[name], id)
}

// Check compares stored, what a sink holds for one connection, with truth,
// the ground truth of the connection's workspace.
func Check(truth notionfake.GroundTruth, stored []Stored) Report {
	var r Report
	held := make(map[string]Stored, len(stored))
	heldDS := map[string]bool{}
	for _, s := range stored {
		if s.Kind == notionfake.TruthDataSource {
			heldDS[s.ID] = s.live()
			continue
		}
		held[s.ID] = s
	}
	sources := map[string]int{} // database -> its number of data sources
	for _, o := range truth.Objects {
		if o.Kind == notionfake.TruthDataSource {
			sources[strings.ToLower(o.DatabaseID)]++
		}
	}
	r.MissingByCause = map[string]int{}
	known := make(map[string]bool, len(truth.Objects))
	for _, o := range truth.Objects {
		id := strings.ToLower(o.ID)
		known[id] = true
		if o.Kind == notionfake.TruthDataSource {
			if o.Live() {
				r.LiveDataSources++
				if !heldDS[id] {
					r.note(&r.MissingDataSources, "missing_data_sources", id)
				}
			}
			continue
		}
		s, ok := held[id]
		switch {
		case !o.Live():
			if ok && s.live() {
				r.note(&r.LiveButGone, "live_but_gone", id)
			}
		case (!ok || !s.live()) && o.Unfindable:
			r.Live++
			r.note(&r.Unfindable, "unfindable", id)
		case !ok || !s.live():
			r.Live++
			r.note(&r.Missing, "missing", id)
			cause := CauseOther
			switch {
			case len(o.Poisoned) > 0:
				cause = CausePermanentError
			case sources[id] > 1 || sources[strings.ToLower(o.DatabaseID)] > 1:
				cause = CauseMultiSource
			case o.OmittedFromSearch:
				cause = CauseOmittedFromSearch
			}
			r.MissingByCause[cause]++
		default:
			r.Live++
			if s.LastEditedTime.Before(o.LastEditedTime) {
				r.note(&r.Stale, "stale", id)
			}
			if o.Kind == notionfake.TruthPage && truncated(o.Properties, s.Properties) {
				r.note(&r.Truncated, "truncated", id)
			}
		}
	}
	for _, s := range stored {
		if s.Kind != notionfake.TruthDataSource && !known[s.ID] && s.live() {
			r.note(&r.Extra, "extra", s.ID)
		}
	}
	return r
}

// listTypes are the property types whose values Notion cuts at 25 items.
var listTypes = []string{"relation", "people", "rich_text", "title"}

// truncated reports whether stored property values fall short of the full
// values: a list with fewer items or still marked has_more, or a rollup
// with another value.
func truncated(full map[string]any, stored map[string]json.RawMessage) bool {
	for name, fv := range full {
		f, _ := fv.(map[string]any)
		typ, _ := f["type"].(string)
		raw, ok := stored[name]
		if !ok {
			continue // a property the sink does not hold is a schema matter, not a cut value
		}
		var s map[string]any
		if err := json.Unmarshal(raw, &s); err != nil {
			return true
		}
		switch {
		case slices.Contains(listTypes, typ):
			want, _ := f[typ].([]any)
			got, _ := s[typ].([]any)
			if len(got) < len(want) || s["has_more"] == true {
				return true
			}
		case typ == "rollup":
			if !reflect.DeepEqual(normalize(f[typ]), normalize(s[typ])) {
				return true
			}
		}
	}
	return false
}

// normalize round-trips v through JSON, so that values built in Go and
// decoded ones compare equal.
func normalize(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		return v
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		return v
	}
	return out
}
