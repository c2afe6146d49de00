package jobs_test

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/notionsync/notionsync/internal/notionfake"
	"github.com/notionsync/notionsync/internal/pgtest"
	"github.com/notionsync/notionsync/sync/sink"
)

// A row whose relation, people and rich_text values hold 30 items (Notion
// cuts them at 25 and says has_more) is stored whole in both sinks, with
// its count rollup's true value, at one property item listing per cut
// property. (Before: the sink kept 25 items, has_more true and a rollup of
// 25, and the property item endpoint was never called.)
func TestCutPropertyValuesAreStoredWhole(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		postgres bool
	}{{"file", false}, {"postgres", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := envOpts{spec: notionfake.SeedSpec{Seed: 31, Pages: 2, Databases: 1, RowsPerDatabase: 4, BlocksPerRow: 2, ManyReferenceRows: 1}}
			if tc.postgres {
				o.sinkURL = pgtest.StartTB(t, pgtest.Options{}).NewDatabase(t)
			}
			e := newEnv(t, o)
			if err := e.fake.SetImperfections(notionfake.Imperfections{TruncateReferences: true}); err != nil {
				t.Fatal(err)
			}
			e.startWorkers(4)
			e.sweep()
			st := e.waitSynced()
			e.waitIdle()
			if len(st.Errors) != 0 {
				t.Fatalf("per-object errors: %v", st.Errors)
			}
			e.assertComplete()

			props := storedProperties(t, e, e.seed.RowIDs[0])
			for name, typ := range map[string]string{"Related": "relation", "Owner": "people", "Notes": "rich_text"} {
				var v map[string]any
				if err := json.Unmarshal(props[name], &v); err != nil {
					t.Fatal(err)
				}
				items, _ := v[typ].([]any)
				if len(items) != notionfake.ManyReferences || v["has_more"] != false {
					t.Errorf("%s: %d items stored, has_more %v; want %d, false", name, len(items), v["has_more"], notionfake.ManyReferences)
				}
			}
			var rollup struct {
				Rollup struct {
					Number float64 `json:"number"`
				} `json:"rollup"`
			}
			if err := json.Unmarshal(props["Related count"], &rollup); err != nil {
				t.Fatal(err)
			}
			if rollup.Rollup.Number != notionfake.ManyReferences {
				t.Errorf("rollup stored %v, want %d", rollup.Rollup.Number, notionfake.ManyReferences)
			}
			// The stored related ids are Notion's, in Notion's order.
			var rel struct {
				Relation []struct {
					ID string `json:"id"`
				} `json:"relation"`
			}
			if err := json.Unmarshal(props["Related"], &rel); err != nil {
				t.Fatal(err)
			}
			var want []any
			if err := e.fake.ViewPage(e.ws, e.seed.RowIDs[0], func(p *notionfake.Page) { want = p.Properties["Related"].([]any) }); err != nil {
				t.Fatal(err)
			}
			for i, w := range want {
				if i >= len(rel.Relation) || rel.Relation[i].ID != w.(map[string]any)["id"] {
					t.Fatalf("relation item %d stored %+v, Notion has %v", i, rel.Relation, want)
				}
			}
			// One listing per cut property: relation, people, rich_text,
			// and the rollup over the cut relation.
			if n := e.fake.DataStats().Count(notionfake.EndpointGetPageProperty, 0); n != 4 {
				t.Errorf("%d property item requests, want 4", n)
			}
		})
	}
}

// storedProperties returns the properties of page id's stored object.
func storedProperties(t *testing.T, e *env, id string) map[string]json.RawMessage {
	t.Helper()
	p, _, err := e.sink.(sink.Reader).GetPage(context.Background(), e.conn, id)
	if err != nil {
		t.Fatalf("page %s: %v", id, err)
	}
	var obj struct {
		Properties map[string]json.RawMessage `json:"properties"`
	}
	if err := json.Unmarshal(p.Object, &obj); err != nil {
		t.Fatal(err)
	}
	return obj.Properties
}

// refuseProperties answers every property item request for page id with
// status and body (by default 403 restricted_resource, as Notion refuses);
// other requests go to base.
type refuseProperties struct {
	base         http.RoundTripper
	id           atomic.Value // string: the page (set once the workspace is seeded)
	status       int
	body, cursor string
	hits         atomic.Int32
	cursors      sync.Map // start_cursor values seen
}

func (f *refuseProperties) RoundTrip(r *http.Request) (*http.Response, error) {
	if !strings.HasPrefix(r.URL.Path, "/v1/pages/"+f.id.Load().(string)+"/properties/") {
		return f.base.RoundTrip(r)
	}
	f.hits.Add(1)
	f.cursors.Store(r.URL.Query().Get("start_cursor"), true)
	if r.Body != nil {
		r.Body.Close()
	}
	status, body := cmp.Or(f.status, http.StatusForbidden), f.body
	if body == "" {
		body = `{"object":"error","status":403,"code":"restricted_resource","message":"Insufficient permissions for this endpoint."}`
	}
	return &http.Response{StatusCode: status, Status: http.StatusText(status), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(strings.NewReader(body)),
		ContentLength: int64(len(body)), Request: r}, nil
}

// A permanent answer of the property item endpoint is the row's own
// per-object error: the row is not stored with a cut value, the listing
// is not asked again, the other rows are stored and the cursor moves.
func TestRefusedPropertyItemsAreAPerObjectError(t *testing.T) {
	t.Parallel()
	spec := notionfake.SeedSpec{Seed: 31, Pages: 2, Databases: 1, RowsPerDatabase: 4, ManyReferenceRows: 1}
	tr := &refuseProperties{base: http.DefaultTransport.(*http.Transport).Clone()}
	tr.id.Store("none")
	e := newEnv(t, envOpts{spec: spec, transport: tr})
	row := e.seed.RowIDs[0]
	tr.id.Store(row)
	if err := e.fake.SetImperfections(notionfake.Imperfections{TruncateReferences: true}); err != nil {
		t.Fatal(err)
	}
	e.startWorkers(4)
	e.sweep()
	st := e.waitSynced()
	e.waitIdle()
	assertError(t, st, row, "property", "restricted_resource")
	if _, _, err := e.sink.(sink.Reader).GetPage(context.Background(), e.conn, row); !errors.Is(err, sink.ErrNotFound) {
		t.Errorf("row with a refused property stored anyway (err %v)", err)
	}
	for _, id := range e.seed.RowIDs[1:] {
		e.assertStored(id, 0)
	}
	if n := tr.hits.Load(); n != 1 {
		t.Errorf("%d property item requests, want 1 (a permanent answer is not retried)", n)
	}
}

// A plain page whose title has 230 rich text items (Notion shows 25) is
// stored with the whole title, read 100 items a request: 3 listings.
func TestLongPageTitleIsStoredWhole(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{spec: notionfake.SeedSpec{Seed: 7, Pages: 3, BlocksPerPage: 2}})
	if err := e.fake.SetImperfections(notionfake.Imperfections{TruncateReferences: true}); err != nil {
		t.Fatal(err)
	}
	page := e.seed.PageIDs[0]
	const parts = 230
	var want strings.Builder
	if err := e.fake.EditPage(e.ws, page, func(p *notionfake.Page) {
		var title []any
		for i := range parts {
			s := fmt.Sprintf("part %d. ", i+1)
			want.WriteString(s)
			title = append(title, notionfake.RichText(s)[0])
		}
		p.Properties = map[string]any{"title": title}
	}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(90 * time.Second)
	e.startWorkers(2)
	e.sweep()
	if st := e.waitSynced(); len(st.Errors) != 0 {
		t.Fatalf("per-object errors: %v", st.Errors)
	}
	e.waitIdle()
	var title struct {
		Title   []any `json:"title"`
		HasMore bool  `json:"has_more"`
	}
	if err := json.Unmarshal(storedProperties(t, e, page)["title"], &title); err != nil {
		t.Fatal(err)
	}
	if len(title.Title) != parts || title.HasMore {
		t.Errorf("title stored with %d items, has_more %v; want %d, false", len(title.Title), title.HasMore, parts)
	}
	p, _, err := e.sink.(sink.Reader).GetPage(context.Background(), e.conn, page)
	if err != nil {
		t.Fatal(err)
	}
	if p.Title != want.String() {
		t.Errorf("record title %q, want %q", p.Title, want.String())
	}
	if n := e.fake.DataStats().Count(notionfake.EndpointGetPageProperty, 0); n != 3 {
		t.Errorf("%d property item requests, want 3 (230 items, 100 a request)", n)
	}
}

// A property item listing that answers has_more with the same cursor for
// ever is stopped at the repeat: the row's per-object error, 2 requests.
func TestEndlessPropertyItemsStopAtARepeatedCursor(t *testing.T) {
	t.Parallel()
	spec := notionfake.SeedSpec{Seed: 31, Pages: 2, Databases: 1, RowsPerDatabase: 4, ManyReferenceRows: 1}
	tr := &refuseProperties{base: http.DefaultTransport.(*http.Transport).Clone(), status: http.StatusOK,
		body: `{"object":"list","type":"property_item","results":[],"has_more":true,"next_cursor":"same","property_item":{"id":"x","type":"relation","relation":{},"next_url":null}}`}
	tr.id.Store("none")
	e := newEnv(t, envOpts{spec: spec, transport: tr})
	row := e.seed.RowIDs[0]
	tr.id.Store(row)
	if err := e.fake.SetImperfections(notionfake.Imperfections{TruncateReferences: true}); err != nil {
		t.Fatal(err)
	}
	e.startWorkers(4)
	e.sweep()
	st := e.waitSynced()
	e.waitIdle()
	assertError(t, st, row, "repeated a pagination cursor")
	if n := tr.hits.Load(); n != 2 {
		t.Errorf("%d property item requests, want 2", n)
	}
	if _, ok := tr.cursors.Load("same"); !ok {
		t.Error("the listing's next_cursor was never sent back")
	}
}
