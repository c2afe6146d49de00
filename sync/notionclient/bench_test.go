package notionclient

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkRoundTrip measures the transport's own cost per request against a
// local fake Notion (loopback HTTP and a real redis-server included), and the
// Redis commands it sends per request. Reproduce with:
//
//	go test -run '^$' -bench BenchmarkRoundTrip -benchmem ./sync/notionclient/
func BenchmarkRoundTrip(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Notion-Request-Id", "req")
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, pageJSON)
	}))
	b.Cleanup(srv.Close)
	rdb := redisSrv.Client()
	b.Cleanup(func() { _ = rdb.Close() })
	counter := &cmdCounter{}
	rdb.AddHook(counter)
	cfg := Config{BaseURL: srv.URL, RatePerMinute: 60_000_000, Burst: 1_000_000}
	c := testClientOn(b, rdb, newFakeTokens("tok-1"), cfg)

	b.Run("transport", func(b *testing.B) {
		rt := c.Transport(conn)
		req, err := http.NewRequest(http.MethodGet, "https://api.notion.com/v1/pages/abc", nil)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		start := counter.n.Load()
		for b.Loop() {
			resp, err := rt.RoundTrip(req)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
		}
		b.ReportMetric(float64(counter.n.Load()-start)/float64(b.N), "redis-cmds/op")
	})
	b.Run("notionapi", func(b *testing.B) {
		nc := c.For(conn)
		b.ReportAllocs()
		start := counter.n.Load()
		for b.Loop() {
			if _, err := nc.Page.Get(b.Context(), "abc"); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(counter.n.Load()-start)/float64(b.N), "redis-cmds/op")
	})
}
