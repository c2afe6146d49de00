package notionfake_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"time"

	"github.com/jomei/notionapi"

	"github.com/notionsync/notionsync/internal/notionfake"
)

// hostRewriter points a client built for api.notion.com at the fake.
type hostRewriter struct {
	base   http.RoundTripper
	target *url.URL
}

func (rt hostRewriter) RoundTrip(r *http.Request) (*http.Response, error) {
	r2 := r.Clone(r.Context())
	r2.URL.Scheme, r2.URL.Host, r2.Host = rt.target.Scheme, rt.target.Host, ""
	return rt.base.RoundTrip(r2)
}

// A seeded workspace read with jomei/notionapi.
func ExampleServer_SeedWorkspace() {
	now := time.Date(2025, 3, 4, 10, 0, 30, 0, time.UTC)
	fake := notionfake.New(notionfake.Options{Now: func() time.Time { return now }})
	ts := httptest.NewServer(fake.Handler())
	defer ts.Close()
	defer fake.Close()

	const ws = "3f1e2d4c-5b6a-4789-8abc-def012345678"
	seed := fake.SeedWorkspace(ws, notionfake.SeedSpec{
		Seed: 1, Pages: 5, NestedPages: 2, BlocksPerPage: 4, Databases: 1, RowsPerDatabase: 3,
	})
	pair := fake.SeedConnection(ws)

	target, _ := url.Parse(ts.URL)
	client := notionapi.NewClient(notionapi.Token(pair.AccessToken), notionapi.WithRetry(1),
		notionapi.WithHTTPClient(&http.Client{Transport: hostRewriter{ts.Client().Transport, target}}))
	res, err := client.Search.Do(context.Background(), &notionapi.SearchRequest{
		Filter: notionapi.SearchFilter{Property: "object", Value: "page"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("pages found:", len(res.Results), "of", len(fake.AllPageIDs(ws)))
	fmt.Println("rows:", len(seed.RowIDs), "last edited:", res.Results[0].(*notionapi.Page).LastEditedTime)
	// Output:
	// pages found: 8 of 8
	// rows: 3 last edited: 2025-03-04 10:00:00 +0000 UTC
}
