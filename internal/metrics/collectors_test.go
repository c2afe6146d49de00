package metrics_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
	"github.com/redis/go-redis/v9"

	"github.com/notionsync/notionsync/internal/metrics"
	"github.com/notionsync/notionsync/internal/redistest"
	"github.com/notionsync/notionsync/jobs"
	"github.com/notionsync/notionsync/tokens"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// fleet is a store with five connections, one per line of the table below,
// created a minute apart starting at t0, and a fake sync state.
//
//	a  active        cursor 10 minutes before now
//	b  active        never synced (created t0+1m)
//	c  paused
//	d  needs_reauth
//	e  disconnected
type fleet struct {
	store  *tokens.Store
	clock  *clock
	now    time.Time // the clock's time after setup: t0 + 1h
	tokens []string  // every access and refresh token stored
	cursor map[string]time.Time

	calls atomic.Int32 // SyncStateFunc calls (batches)
	mu    sync.Mutex
	read  []string // connections whose sync state was read, once per read
}

func newFleet(t *testing.T) *fleet {
	t.Helper()
	rdb := redisSrv.Client()
	t.Cleanup(func() { _ = rdb.Close() })
	kr, err := tokens.NewKeyring(tokens.Key{ID: "k", Secret: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clk := &clock{t: t0}
	store, err := tokens.NewStore(tokens.StoreConfig{Redis: rdb, Keyring: kr, KeyPrefix: redistest.UniquePrefix(t), Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	f := &fleet{store: store, clock: clk, cursor: map[string]time.Time{}}
	ctx := context.Background()
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		g := &tokens.Grant{AccessToken: "secret-access-" + id, RefreshToken: "nrt_secret-refresh-" + id}
		f.tokens = append(f.tokens, g.AccessToken, g.RefreshToken)
		if _, err := store.Connect(ctx, id, g, tokens.Timing{}, tokens.ConnectOptions{}); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Minute)
	}
	if err := store.Pause(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	if err := store.MarkNeedsReauth(ctx, "d", "test"); err != nil {
		t.Fatal(err)
	}
	if err := store.Disconnect(ctx, "e"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Hour - 5*time.Minute)
	f.now = clk.Now()
	f.cursor["a"] = f.now.Add(-10 * time.Minute)
	return f
}

func (f *fleet) syncState(_ context.Context, connIDs []string) ([]jobs.SyncState, error) {
	f.calls.Add(1)
	f.mu.Lock()
	f.read = append(f.read, connIDs...)
	f.mu.Unlock()
	out := make([]jobs.SyncState, len(connIDs))
	for i, id := range connIDs {
		out[i] = jobs.SyncState{Cursor: f.cursor[id]}
	}
	return out, nil
}

func (f *fleet) readIDs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	ids := slices.Clone(f.read)
	slices.Sort(ids)
	return ids
}

func TestConnectionsCollector(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	cc, err := metrics.NewConnectionsCollector(f.store, f.syncState, 1, metrics.WithClock(f.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	// a: 600s behind; b: never synced, created t0+1m, so 3540s behind.
	const want = `
# HELP notionsync_connections Connections by status, among the connections read (see notionsync_connections_scan_truncated).
# TYPE notionsync_connections gauge
notionsync_connections{status="active"} 2
notionsync_connections{status="disconnected"} 1
notionsync_connections{status="needs_reauth"} 1
notionsync_connections{status="paused"} 1
# HELP notionsync_connections_scanned Connections the last collection read.
# TYPE notionsync_connections_scanned gauge
notionsync_connections_scanned 5
# HELP notionsync_connections_scan_truncated 1 if there are more connections than the collector's scan limit; the connection series then cover only the first ones.
# TYPE notionsync_connections_scan_truncated gauge
notionsync_connections_scan_truncated 0
# HELP notionsync_sync_lag_seconds Now minus the connection's sync cursor (since creation if it never synced), for the first active connections up to the per-connection limit.
# TYPE notionsync_sync_lag_seconds gauge
notionsync_sync_lag_seconds{connection="a"} 600
# HELP notionsync_sync_lag_max_seconds Largest sync lag among the active connections read (0 if none).
# TYPE notionsync_sync_lag_max_seconds gauge
notionsync_sync_lag_max_seconds 3540
# HELP notionsync_connections_sync_lag_seconds Distribution of sync lag over the active connections read.
# TYPE notionsync_connections_sync_lag_seconds histogram
notionsync_connections_sync_lag_seconds_bucket{le="60"} 0
notionsync_connections_sync_lag_seconds_bucket{le="300"} 0
notionsync_connections_sync_lag_seconds_bucket{le="600"} 1
notionsync_connections_sync_lag_seconds_bucket{le="1800"} 1
notionsync_connections_sync_lag_seconds_bucket{le="3600"} 2
notionsync_connections_sync_lag_seconds_bucket{le="10800"} 2
notionsync_connections_sync_lag_seconds_bucket{le="21600"} 2
notionsync_connections_sync_lag_seconds_bucket{le="43200"} 2
notionsync_connections_sync_lag_seconds_bucket{le="86400"} 2
notionsync_connections_sync_lag_seconds_bucket{le="604800"} 2
notionsync_connections_sync_lag_seconds_bucket{le="+Inf"} 2
notionsync_connections_sync_lag_seconds_sum 4140
notionsync_connections_sync_lag_seconds_count 2
# HELP notionsync_scrape_collector_success 1 if the collector's last collection read Redis successfully (or reused a recent result), else 0.
# TYPE notionsync_scrape_collector_success gauge
notionsync_scrape_collector_success{collector="connections"} 1
`
	if err := testutil.CollectAndCompare(cc, strings.NewReader(want),
		"notionsync_connections", "notionsync_connections_scanned", "notionsync_connections_scan_truncated",
		"notionsync_sync_lag_seconds", "notionsync_sync_lag_max_seconds", "notionsync_connections_sync_lag_seconds",
		"notionsync_scrape_collector_success"); err != nil {
		t.Error(err)
	}
	if got, want := f.readIDs(), []string{"a", "b"}; !slices.Equal(got, want) {
		t.Errorf("sync state read for %v, want only the active connections %v", got, want)
	}
	if n := f.calls.Load(); n != 1 {
		t.Errorf("%d sync state reads, want 1 (one batch)", n)
	}
	if n := testutil.CollectAndCount(cc, "notionsync_scrape_collector_duration_seconds"); n != 1 {
		t.Errorf("%d duration series, want 1", n)
	}
}

func TestConnectionsCollectorPerConnectionLimit(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	for _, tc := range []struct {
		limit int
		want  int
	}{{0, 0}, {1, 1}, {2, 2}, {100, 2}} {
		cc, err := metrics.NewConnectionsCollector(f.store, f.syncState, tc.limit, metrics.WithClock(f.clock.Now))
		if err != nil {
			t.Fatal(err)
		}
		if n := testutil.CollectAndCount(cc, "notionsync_sync_lag_seconds"); n != tc.want {
			t.Errorf("limit %d: %d per-connection series, want %d", tc.limit, n, tc.want)
		}
		// The aggregates cover every active connection whatever the limit.
		if n := series(t, gatherer(cc))["notionsync_connections_sync_lag_seconds_count"]; n != 2 {
			t.Errorf("limit %d: lag histogram counts %v connections, want 2", tc.limit, n)
		}
	}
}

func TestConnectionsCollectorScanLimit(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	for _, tc := range []struct {
		scan      int
		scanned   float64
		truncated float64
		active    float64
		paused    float64
	}{
		{scan: 2, scanned: 2, truncated: 1, active: 2, paused: 0},
		{scan: 4, scanned: 4, truncated: 1, active: 2, paused: 1},
		{scan: 5, scanned: 5, truncated: 0, active: 2, paused: 1}, // exactly all: the probe finds no more
		{scan: 6, scanned: 5, truncated: 0, active: 2, paused: 1},
	} {
		cc, err := metrics.NewConnectionsCollector(f.store, f.syncState, 0,
			metrics.WithScanLimit(tc.scan), metrics.WithClock(f.clock.Now))
		if err != nil {
			t.Fatal(err)
		}
		s := series(t, gatherer(cc))
		got := []float64{s["notionsync_connections_scanned"], s["notionsync_connections_scan_truncated"],
			s[`notionsync_connections{status="active"}`], s[`notionsync_connections{status="paused"}`]}
		if want := []float64{tc.scanned, tc.truncated, tc.active, tc.paused}; !slices.Equal(got, want) {
			t.Errorf("scan limit %d: scanned, truncated, active, paused = %v, want %v", tc.scan, got, want)
		}
	}
}

func TestConnectionsCollectorReusesRecentResult(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	cc, err := metrics.NewConnectionsCollector(f.store, f.syncState, 10,
		metrics.WithClock(f.clock.Now), metrics.WithMinInterval(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	testutil.CollectAndCount(cc)
	testutil.CollectAndCount(cc)
	if n, ids := f.calls.Load(), len(f.readIDs()); n != 1 || ids != 2 {
		t.Fatalf("two scrapes within the interval read %d sync states in %d batches, want 2 in 1 (one collection)", ids, n)
	}
	f.clock.Advance(10 * time.Second)
	if v := series(t, gatherer(cc))[`notionsync_sync_lag_seconds{connection="a"}`]; v != 610 {
		t.Errorf("lag after the interval = %v, want 610", v)
	}
	if n, ids := f.calls.Load(), len(f.readIDs()); n != 2 || ids != 4 {
		t.Errorf("a scrape after the interval read %d sync states in %d batches in all, want 4 in 2", ids, n)
	}
}

// TestConnectionsCollectorReadsSyncStatesInBatches: 250 active connections
// cost three SyncStateFunc calls (100, 100 and 50 ids), not 250; each
// connection's lag comes from its own state; batches run concurrently, but
// no more than WithConcurrency at once.
func TestConnectionsCollectorReadsSyncStatesInBatches(t *testing.T) {
	t.Parallel()
	const n, concurrency = 250, 2
	rdb := redisSrv.Client()
	t.Cleanup(func() { _ = rdb.Close() })
	kr, err := tokens.NewKeyring(tokens.Key{ID: "k", Secret: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clk := &clock{t: t0}
	store, err := tokens.NewStore(tokens.StoreConfig{Redis: rdb, Keyring: kr, KeyPrefix: redistest.UniquePrefix(t), Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("c%03d", i)
		g := &tokens.Grant{AccessToken: "access-" + ids[i], RefreshToken: "nrt_refresh-" + ids[i]}
		if _, err := store.Connect(context.Background(), ids[i], g, tokens.Timing{}, tokens.ConnectOptions{}); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Second)
	}
	clk.Advance(time.Hour)
	now := clk.Now()
	// Connection i is 10*i seconds behind, except every fifth, which never
	// synced and is behind since its creation (t0 + i seconds).
	wantLag := func(i int) float64 {
		if i%5 == 0 {
			return now.Sub(t0.Add(time.Duration(i) * time.Second)).Seconds()
		}
		return float64(10 * i)
	}

	var (
		mu                    sync.Mutex
		batches               [][]string
		calls, inFlight, peak atomic.Int32
		concurrent            = make(chan struct{})
		markConcurrent        sync.Once
	)
	state := func(ctx context.Context, connIDs []string) ([]jobs.SyncState, error) {
		cur := inFlight.Add(1)
		defer inFlight.Add(-1)
		for p := peak.Load(); cur > p; p = peak.Load() {
			if peak.CompareAndSwap(p, cur) {
				break
			}
		}
		if cur == concurrency {
			markConcurrent.Do(func() { close(concurrent) })
		}
		// The first batches wait for each other: with batches read one at
		// a time the collection would time out.
		if calls.Add(1) <= concurrency {
			select {
			case <-concurrent:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		mu.Lock()
		batches = append(batches, slices.Clone(connIDs))
		mu.Unlock()
		out := make([]jobs.SyncState, len(connIDs))
		for j, id := range connIDs {
			var i int
			if _, err := fmt.Sscanf(id, "c%03d", &i); err != nil {
				return nil, err
			}
			if i%5 != 0 {
				out[j].Cursor = now.Add(-time.Duration(10*i) * time.Second)
			}
		}
		return out, nil
	}
	cc, err := metrics.NewConnectionsCollector(store, state, n, metrics.WithClock(clk.Now), metrics.WithConcurrency(concurrency))
	if err != nil {
		t.Fatal(err)
	}
	s := series(t, gatherer(cc))
	if v := s[`notionsync_scrape_collector_success{collector="connections"}`]; v != 1 {
		t.Fatal("collection failed (batches read one at a time?)")
	}

	var sizes []int
	var read []string
	for _, b := range batches {
		sizes = append(sizes, len(b))
		read = append(read, b...)
	}
	slices.Sort(sizes)
	if !slices.Equal(sizes, []int{50, 100, 100}) {
		t.Errorf("SyncStateFunc called %d times with %v ids, want 3 times with 100, 100 and 50", len(batches), sizes)
	}
	slices.Sort(read)
	if !slices.Equal(read, ids) {
		t.Errorf("sync states read for %d ids, want each of the %d connections once", len(read), n)
	}
	if p := peak.Load(); p > concurrency {
		t.Errorf("%d batches read at once, want at most %d", p, concurrency)
	}
	for i, id := range ids {
		if got, want := s[`notionsync_sync_lag_seconds{connection="`+id+`"}`], wantLag(i); got != want {
			t.Errorf("lag of %s = %v, want %v", id, got, want)
		}
	}
	if got := s["notionsync_connections_sync_lag_seconds_count"]; got != n {
		t.Errorf("lag histogram counts %v connections, want %d", got, n)
	}
}

func TestConnectionsCollectorFailures(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	for name, state := range map[string]metrics.SyncStateFunc{
		"sync state error": func(context.Context, []string) ([]jobs.SyncState, error) {
			return nil, errors.New("redis: connection refused")
		},
		// Blocks until the collection's own deadline: no sleep needed.
		"timeout": func(ctx context.Context, _ []string) ([]jobs.SyncState, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		},
		// A state missing: the lags could not be told apart.
		"too few states": func(_ context.Context, ids []string) ([]jobs.SyncState, error) {
			return make([]jobs.SyncState, len(ids)-1), nil
		},
	} {
		t.Run(name, func(t *testing.T) {
			cc, err := metrics.NewConnectionsCollector(f.store, state, 10, metrics.WithTimeout(50*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			s := series(t, gatherer(cc))
			want := map[string]float64{`notionsync_scrape_collector_success{collector="connections"}`: 0}
			delete(s, `notionsync_scrape_collector_duration_seconds{collector="connections"}`)
			if d := sameSamples(s, want); d != "" {
				t.Error(d)
			}
		})
	}
}

func TestConnectionsCollectorNeverExposesTokens(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	cc, err := metrics.NewConnectionsCollector(f.store, f.syncState, 100, metrics.WithClock(f.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	mfs, err := gatherer(cc).Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	enc := expfmt.NewEncoder(&out, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			t.Fatal(err)
		}
	}
	if !strings.Contains(out.String(), `connection="a"`) {
		t.Fatalf("output lacks the per-connection series:\n%s", out.String())
	}
	for _, tok := range f.tokens {
		if strings.Contains(out.String(), tok) || strings.Contains(out.String(), "secret") {
			t.Errorf("output contains a token:\n%s", out.String())
		}
	}
}

func TestConnectionsCollectorLint(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	cc, err := metrics.NewConnectionsCollector(f.store, f.syncState, 10, metrics.WithClock(f.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(cc); n < 10 {
		t.Fatalf("%d series to lint, want them all", n)
	}
	problems, err := testutil.CollectAndLint(cc)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

func TestNewConnectionsCollectorValidates(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	for name, build := range map[string]func() error{
		"nil store": func() error {
			_, err := metrics.NewConnectionsCollector(nil, f.syncState, 1)
			return err
		},
		"nil sync state": func() error {
			_, err := metrics.NewConnectionsCollector(f.store, nil, 1)
			return err
		},
		"negative limit": func() error {
			_, err := metrics.NewConnectionsCollector(f.store, f.syncState, -1)
			return err
		},
		"negative timeout": func() error {
			_, err := metrics.NewConnectionsCollector(f.store, f.syncState, 1, metrics.WithTimeout(-time.Second))
			return err
		},
		"negative scan limit": func() error {
			_, err := metrics.NewConnectionsCollector(f.store, f.syncState, 1, metrics.WithScanLimit(-1))
			return err
		},
	} {
		if build() == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// nextDB hands each queue test its own Redis database (asynq keys have no
// prefix).
var nextDB atomic.Int32

func queueClient(t *testing.T) *redis.Client {
	t.Helper()
	db := int(nextDB.Add(1))
	rdb := redis.NewClient(&redis.Options{Addr: redisSrv.Addr(), DB: db})
	t.Cleanup(func() { _ = rdb.Close() })
	if err := rdb.FlushDB(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	return rdb
}

func TestQueueCollector(t *testing.T) {
	t.Parallel()
	rdb := queueClient(t)
	client := asynq.NewClientFromRedisClient(rdb)
	insp := asynq.NewInspectorFromRedisClient(rdb)
	enqueue := func(queue string, n int, opts ...asynq.Option) {
		t.Helper()
		for range n {
			if _, err := client.Enqueue(asynq.NewTask("test:task", nil), append(opts, asynq.Queue(queue))...); err != nil {
				t.Fatal(err)
			}
		}
	}
	enqueue("sync", 2)
	enqueue("tokens", 1, asynq.ProcessIn(time.Hour))
	enqueue("low", 3)
	if _, err := insp.ArchiveAllPendingTasks("low"); err != nil {
		t.Fatal(err)
	}
	if err := insp.PauseQueue("tokens"); err != nil {
		t.Fatal(err)
	}

	qc, err := metrics.NewQueueCollector(insp)
	if err != nil {
		t.Fatal(err)
	}
	s := series(t, gatherer(qc))
	want := map[string]float64{
		`notionsync_scrape_collector_success{collector="asynq_queues"}`: 1,
	}
	for queue, counts := range map[string]map[string]float64{
		"sync":   {"pending": 2},
		"tokens": {"scheduled": 1},
		"low":    {"archived": 3},
	} {
		size := 0.0
		for _, state := range []string{"pending", "active", "scheduled", "retry", "archived", "completed", "aggregating"} {
			want[`asynq_tasks_enqueued_total{queue="`+queue+`",state="`+state+`"}`] = counts[state]
			size += counts[state]
		}
		want[`asynq_queue_size{queue="`+queue+`"}`] = size
		want[`asynq_tasks_processed_total{queue="`+queue+`"}`] = 0
		want[`asynq_tasks_failed_total{queue="`+queue+`"}`] = 0
		paused := 0.0
		if queue == "tokens" {
			paused = 1
		}
		want[`asynq_queue_paused{queue="`+queue+`"}`] = paused
	}
	// Latency and memory depend on the clock and on Redis' allocator: check
	// that they are there, not their values.
	for k, v := range maps.Clone(s) {
		if strings.HasPrefix(k, "asynq_queue_latency_seconds{") || strings.HasPrefix(k, "asynq_queue_memory_usage_approx_bytes{") ||
			strings.HasPrefix(k, "notionsync_scrape_collector_duration_seconds{") {
			if v < 0 {
				t.Errorf("%s = %v", k, v)
			}
			delete(s, k)
		}
	}
	if d := sameSamples(s, want); d != "" {
		t.Error(d)
	}
	for _, name := range []string{"asynq_queue_latency_seconds", "asynq_queue_memory_usage_approx_bytes"} {
		if n := testutil.CollectAndCount(qc, name); n != 3 {
			t.Errorf("%s: %d series, want 3 (one per queue)", name, n)
		}
	}
}

// TestQueueCollectorLint: the only problem is the one inherited from
// asynq's naming, kept for asynqmon.
func TestQueueCollectorLint(t *testing.T) {
	t.Parallel()
	rdb := queueClient(t)
	if _, err := asynq.NewClientFromRedisClient(rdb).Enqueue(asynq.NewTask("test:task", nil)); err != nil {
		t.Fatal(err)
	}
	qc, err := metrics.NewQueueCollector(asynq.NewInspectorFromRedisClient(rdb))
	if err != nil {
		t.Fatal(err)
	}
	problems, err := testutil.CollectAndLint(qc)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if p.Metric == "asynq_tasks_enqueued_total" && strings.Contains(p.Text, `non-counter metrics should not have "_total" suffix`) {
			continue
		}
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	if len(problems) != 1 {
		t.Errorf("%d lint problems, want exactly the known one: %v", len(problems), problems)
	}
}

func TestNewQueueCollectorValidates(t *testing.T) {
	t.Parallel()
	if _, err := metrics.NewQueueCollector(nil); err == nil {
		t.Error("NewQueueCollector(nil) succeeded")
	}
}

// gatherer registers c alone, for series().
func gatherer(c prometheus.Collector) prometheus.Gatherer {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	return reg
}
