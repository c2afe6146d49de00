package jobs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jomei/notionapi"
	"github.com/redis/go-redis/v9"

	"github.com/notionsync/notionsync/internal/notionfake"
	"github.com/notionsync/notionsync/jobs"
	"github.com/notionsync/notionsync/sync/files"
	"github.com/notionsync/notionsync/sync/sink"
)

// benchSpec is the workspace both full-sync benchmarks sync: 200 pages of
// 10 top-level blocks, two levels deep.
var benchSpec = notionfake.SeedSpec{Seed: 42, Pages: 200, BlocksPerPage: 10, BlockDepth: 2}

const benchConcurrency = 10

// BenchmarkFullSync measures pages/s of a full sync of benchSpec by one
// worker process (asynq, Redis, tokens, limiter set out of the way, file
// sink), against the fake at zero latency.
func BenchmarkFullSync(b *testing.B) {
	for _, mem := range []bool{false, true} {
		b.Run(sinkName(mem), func(b *testing.B) { benchFullSync(b, mem, nil) })
	}
	// File downloads on, for pages without files: the cost of looking for
	// file references must not show.
	b.Run("sink=file,files=on", func(b *testing.B) { benchFullSync(b, false, &files.Config{}) })
}

func sinkName(mem bool) string {
	if mem {
		return "sink=memory"
	}
	return "sink=file"
}

func benchFullSync(b *testing.B, mem bool, fc *files.Config) {
	var pages int
	var took time.Duration
	for b.Loop() {
		b.StopTimer()
		e := newEnv(b, envOpts{spec: benchSpec, memorySink: mem, files: fc})
		e.clock.Advance(2 * time.Minute)
		e.startWorkers(benchConcurrency)
		b.StartTimer()
		start := time.Now()
		e.sweep()
		st := e.waitSynced()
		took += time.Since(start)
		pages += int(st.PagesSynced)
	}
	b.ReportMetric(float64(pages)/took.Seconds(), "pages/s")
}

// BenchmarkBareLoop syncs the same workspace with a bare notionapi loop:
// the same number of goroutines, the same sink, but no asynq, no Redis, no
// token machinery and no rate limiter. The ratio of the two rates is the
// project's overhead.
func BenchmarkBareLoop(b *testing.B) {
	for _, mem := range []bool{false, true} {
		b.Run(sinkName(mem), func(b *testing.B) { benchBareLoop(b, mem) })
	}
}

func benchBareLoop(b *testing.B, mem bool) {
	var pages int
	var took time.Duration
	for b.Loop() {
		b.StopTimer()
		e := newEnv(b, envOpts{spec: benchSpec, memorySink: mem})
		pair, _ := e.fake.CurrentPair(e.ws)
		client := notionapi.NewClient(notionapi.Token(pair.AccessToken), notionapi.WithRetry(1),
			notionapi.WithHTTPClient(&http.Client{Transport: rewrite{base: e.hs}}))
		b.StartTimer()
		start := time.Now()
		n, err := bareSync(context.Background(), client, e.sink, e.conn)
		if err != nil {
			b.Fatal(err)
		}
		took += time.Since(start)
		pages += n
	}
	b.ReportMetric(float64(pages)/took.Seconds(), "pages/s")
}

// rewrite points notionapi at the fake.
type rewrite struct{ base string }

func (r rewrite) RoundTrip(req *http.Request) (*http.Response, error) {
	u, _ := url.Parse(r.base)
	req = req.Clone(req.Context())
	req.URL.Scheme, req.URL.Host = u.Scheme, u.Host
	return http.DefaultTransport.RoundTrip(req)
}

func bareSync(ctx context.Context, c *notionapi.Client, sk sink.Sink, conn string) (int, error) {
	var ids []notionapi.ObjectID
	var cursor notionapi.Cursor
	for {
		res, err := c.Search.Do(ctx, &notionapi.SearchRequest{StartCursor: cursor, PageSize: 100,
			Filter: notionapi.SearchFilter{Property: "object", Value: "page"}})
		if err != nil {
			return 0, err
		}
		for _, o := range res.Results {
			if p, ok := o.(*notionapi.Page); ok {
				ids = append(ids, notionapi.ObjectID(p.ID))
			}
		}
		if !res.HasMore {
			break
		}
		cursor = res.NextCursor
	}
	work := make(chan notionapi.ObjectID)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for range benchConcurrency {
		wg.Go(func() {
			for id := range work {
				if err := barePage(ctx, c, sk, conn, id); err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
				}
			}
		})
	}
	for _, id := range ids {
		work <- id
	}
	close(work)
	wg.Wait()
	return len(ids), firstErr
}

func barePage(ctx context.Context, c *notionapi.Client, sk sink.Sink, conn string, id notionapi.ObjectID) error {
	page, err := c.Page.Get(ctx, notionapi.PageID(id))
	if err != nil {
		return err
	}
	blocks, err := bareChildren(ctx, c, notionapi.BlockID(id))
	if err != nil {
		return err
	}
	raw, err := json.Marshal(page)
	if err != nil {
		return err
	}
	p, err := sink.PageFromObject(conn, raw, blocks, time.Now())
	if err != nil {
		return err
	}
	_, err = sk.PutPage(ctx, p)
	return err
}

func bareChildren(ctx context.Context, c *notionapi.Client, id notionapi.BlockID) ([]sink.Block, error) {
	var out []sink.Block
	var cursor string
	for {
		res, err := c.Block.GetChildren(ctx, id, &notionapi.Pagination{StartCursor: notionapi.Cursor(cursor), PageSize: 100})
		if err != nil {
			return nil, err
		}
		for _, blk := range res.Results {
			raw, err := json.Marshal(blk)
			if err != nil {
				return nil, err
			}
			sb, err := sink.BlockFromRaw(raw)
			if err != nil {
				return nil, err
			}
			if blk.GetHasChildren() {
				if sb.Children, err = bareChildren(ctx, c, blk.GetID()); err != nil {
					return nil, err
				}
			}
			out = append(out, sb)
		}
		if !res.HasMore {
			return out, nil
		}
		cursor = res.NextCursor
	}
}

// BenchmarkUnchangedResync10k: a 10,000-page workspace, fully synced, is
// swept again with nothing changed. Reported: Notion requests per sweep.
func BenchmarkUnchangedResync10k(b *testing.B) {
	e := newEnv(b, envOpts{spec: notionfake.SeedSpec{Seed: 7, Pages: 10_000, BlocksPerPage: 1, History: 48 * time.Hour}})
	e.syncTimeout = 15 * time.Minute
	e.clock.Advance(2 * time.Minute)
	e.startWorkers(benchConcurrency)
	e.sweep()
	st := e.waitSynced()
	if st.PagesSynced != 10_000 {
		b.Fatalf("initial sync stored %d pages", st.PagesSynced)
	}
	e.clock.Advance(10 * time.Minute)
	payload := fmt.Sprintf(`{"conn_id":%q}`, e.conn)
	requests := 0
	b.ResetTimer()
	for b.Loop() {
		before := e.fake.RequestCount(e.ws)
		if err := e.runTask(jobs.TypeSweep, payload); err != nil {
			b.Fatal(err)
		}
		requests += e.fake.RequestCount(e.ws) - before
	}
	b.ReportMetric(float64(requests)/float64(b.N), "notion-requests/sweep")
}

// memSink is an in-memory sink for benchmarks that isolate the pipeline's
// own cost from the storage's.
type memSink struct {
	mu sync.Mutex
	m  map[string]sink.State
}

func (s *memSink) PutPage(_ context.Context, p *sink.Page) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m["page:"+p.ID] = sink.State{LastEditedTime: p.LastEditedTime, SyncedAt: p.SyncedAt}
	return true, nil
}
func (s *memSink) PutDatabase(_ context.Context, d *sink.Database) (bool, error) { return true, nil }
func (s *memSink) PutDataSource(_ context.Context, d *sink.DataSource) (bool, error) {
	return true, nil
}
func (s *memSink) DeletePage(context.Context, string, string, time.Time) error       { return nil }
func (s *memSink) DeleteDataSource(context.Context, string, string, time.Time) error { return nil }
func (s *memSink) DeleteDatabase(context.Context, string, string, time.Time) error   { return nil }
func (s *memSink) MarkUnshared(context.Context, string, string, time.Time) error     { return nil }
func (s *memSink) Tombstone(context.Context, string, sink.Kind, string, sink.Reason, time.Time) error {
	return nil
}
func (s *memSink) List(context.Context, string, sink.Kind, func(string, sink.State) error) error {
	return nil
}
func (s *memSink) Stat(_ context.Context, _ string, _ sink.Kind, id string) (sink.State, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.m["page:"+id]
	if !ok {
		return sink.State{}, sink.ErrNotFound
	}
	return st, nil
}
func (s *memSink) Close() error { return nil }

// BenchmarkPageWalkRedis measures the Redis cost of one page task on a
// deep page (200 top-level blocks, three levels: 25+ listing requests):
// round trips per Notion request (the rate limiter's included) and bytes
// of checkpoint written. Reproduce with
//
//	go test -run '^$' -bench PageWalkRedis -benchtime 20x ./jobs
func BenchmarkPageWalkRedis(b *testing.B) {
	var trips, requests, written int64
	for b.Loop() {
		b.StopTimer()
		e := newEnv(b, envOpts{spec: notionfake.SeedSpec{Seed: 7, Pages: 1, BlocksPerPage: 200, BlockDepth: 3}})
		rt, cw := &roundTrips{}, &ckptWrites{}
		e.rdb.AddHook(rt)
		e.rdb.AddHook(cw)
		payload := fmt.Sprintf(`{"conn_id":%q,"page_id":%q}`, e.conn, e.seed.PageIDs[0])
		before := e.fake.RequestCount(e.ws)
		b.StartTimer()
		if err := e.runTask(jobs.TypePage, payload); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		trips += int64(rt.commands.Load() + rt.pipelines.Load())
		written += cw.bytes.Load()
		requests += int64(e.fake.RequestCount(e.ws) - before)
		b.StartTimer()
	}
	b.ReportMetric(float64(trips)/float64(requests), "redis-round-trips/notion-request")
	b.ReportMetric(float64(requests)/float64(b.N), "notion-requests/page")
	b.ReportMetric(float64(written)/float64(b.N), "checkpoint-bytes-written/page")
}

// ckptWrites sums the argument bytes of commands (single or pipelined)
// that write a checkpoint key.
type ckptWrites struct{ bytes atomic.Int64 }

func (*ckptWrites) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *ckptWrites) count(cmd redis.Cmder) {
	args := cmd.Args()
	if len(args) < 2 || (cmd.Name() != "set" && cmd.Name() != "hset") {
		return
	}
	if k, _ := args[1].(string); !strings.Contains(k, ":ckpt:") {
		return
	}
	for _, a := range args[2:] {
		c.bytes.Add(int64(len(fmt.Sprint(a))))
	}
}

func (c *ckptWrites) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { c.count(cmd); return next(ctx, cmd) }
}

func (c *ckptWrites) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			c.count(cmd)
		}
		return next(ctx, cmds)
	}
}
