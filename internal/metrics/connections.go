package metrics

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/notionsync/notionsync/jobs"
	"github.com/notionsync/notionsync/tokens"
)

// SyncStateFunc reads the sync progress of a batch of connections: one
// state per id, in the order of connIDs (a connection without state gets
// zero times). (*jobs.StateReader).States has this shape and reads a batch
// in one pipelined Redis round trip. The collector passes at most 100 ids
// per call, may call it concurrently (see WithConcurrency), and fails the
// collection unless it returns exactly one state per id.
type SyncStateFunc func(ctx context.Context, connIDs []string) ([]jobs.SyncState, error)

// listPage is how many connections one Store.List call reads, and how many
// sync states one SyncStateFunc call reads.
const listPage = 100

// lagBuckets are the upper bounds of notionsync_connections_sync_lag_seconds.
var lagBuckets = []float64{60, 300, 600, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 24 * 3600, 7 * 24 * 3600}

// ConnectionsCollector is a prometheus.Collector that reads, at scrape time,
// how many connections are in each status and how far each active
// connection's sync is behind (now minus its jobs cursor).
//
// # Cost and the cap
//
// One collection reads at most the scan limit of connections (see
// WithScanLimit): Store.List in pages of 100, one page after the other
// (a ZRANK, a ZRANGE and one pipelined HMGET of the page's connections:
// three round trips per page), then the active connections' sync states in
// batches of 100, one SyncStateFunc call per batch (one pipelined round
// trip with jobs.StateReader.States), WithConcurrency batches at a time,
// all within WithTimeout. With the default scan limit that is at most about
// 400 Redis round trips per collection. Results are reused for
// WithMinInterval, and overlapping scrapes share one collection.
// Register it in one process only (the scheduler): every process would read
// the same Redis and report the same numbers.
//
// Per-connection series (notionsync_sync_lag_seconds{connection}) are
// opt-in: they name every connection id to whoever can read the metrics,
// and each is a time series, so pass limit 0 unless the operator asked for
// them (the scheduler passes 0 unless NOTIONSYNC_METRICS_CONNECTION_LABELS
// is on). With a limit they are emitted for the first `limit` active
// connections in creation order, so the set of series is stable between
// scrapes. Per-connection labels do not scale beyond a few thousand
// connections (every one is a time series in Prometheus); above the limit
// only the aggregate series describe the rest: connections by status, the
// maximum lag and a histogram of lags over every connection read. Beyond the scan limit even those cover only the
// connections read, and notionsync_connections_scan_truncated is 1.
//
// A connection that has never completed a sync reports its lag since it was
// created. Paused, needs_reauth and disconnected connections have no lag
// series (they do not sync; notionsync_connections counts them). Since a
// cursor moves when a sweep completes, an alert on lag should allow for the
// sync interval.
//
// Collect is safe for concurrent use. Series carry connection ids, never
// tokens.
type ConnectionsCollector struct {
	store  *tokens.Store
	state  SyncStateFunc
	limit  int
	opts   collectorOptions
	scrape scrapeDescs

	connections, scanned, truncated *prometheus.Desc
	lag, lagMax, lagHist            *prometheus.Desc

	mu     sync.Mutex // serializes collections; guards last and lastAt
	last   *connSnapshot
	lastAt time.Time
}

// connSnapshot is the result of one collection.
type connSnapshot struct {
	byStatus  map[string]int
	scanned   int
	truncated bool
	perConn   []connLag // the first limit active connections
	lagMax    float64
	lagCount  uint64
	lagSum    float64
	lagBucket map[float64]uint64 // cumulative, as prometheus.NewConstHistogram wants
}

type connLag struct {
	id  string
	lag float64
}

// NewConnectionsCollector returns a collector over store's connections and
// their sync state. limit caps the per-connection series (0: aggregates
// only). Register it with prometheus.Registerer.Register.
func NewConnectionsCollector(store *tokens.Store, syncState SyncStateFunc, limit int, opts ...CollectorOption) (*ConnectionsCollector, error) {
	switch {
	case store == nil:
		return nil, errors.New("metrics: NewConnectionsCollector needs a *tokens.Store")
	case syncState == nil:
		return nil, errors.New("metrics: NewConnectionsCollector needs a SyncStateFunc")
	case limit < 0:
		return nil, errors.New("metrics: NewConnectionsCollector: limit must not be negative")
	}
	o, err := buildOptions(opts)
	if err != nil {
		return nil, err
	}
	if o.scanLimit == 0 {
		o.scanLimit = max(limit, DefaultScanLimit)
	}
	o.scanLimit = max(o.scanLimit, limit, 1)
	return &ConnectionsCollector{
		store:  store,
		state:  syncState,
		limit:  limit,
		opts:   o,
		scrape: newScrapeDescs("connections"),
		connections: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", "connections"),
			"Connections by status, among the connections read (see notionsync_connections_scan_truncated).",
			[]string{"status"}, nil),
		scanned: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "connections", "scanned"),
			"Connections the last collection read.", nil, nil),
		truncated: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "connections", "scan_truncated"),
			"1 if there are more connections than the collector's scan limit; the connection series then cover only the first ones.",
			nil, nil),
		lag: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", "sync_lag_seconds"),
			"Now minus the connection's sync cursor (since creation if it never synced), for the first active connections up to the per-connection limit.",
			[]string{"connection"}, nil),
		lagMax: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", "sync_lag_max_seconds"),
			"Largest sync lag among the active connections read (0 if none).", nil, nil),
		lagHist: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "connections", "sync_lag_seconds"),
			"Distribution of sync lag over the active connections read.", nil, nil),
	}, nil
}

// Describe implements prometheus.Collector.
func (c *ConnectionsCollector) Describe(ch chan<- *prometheus.Desc) {
	c.scrape.describe(ch)
	for _, d := range []*prometheus.Desc{c.connections, c.scanned, c.truncated, c.lag, c.lagMax, c.lagHist} {
		ch <- d
	}
}

// Collect implements prometheus.Collector. It reads Redis (within the
// timeout) unless a recent result can be reused.
func (c *ConnectionsCollector) Collect(ch chan<- prometheus.Metric) {
	start := time.Now()
	snap, err := c.snapshot()
	c.scrape.report(ch, err == nil, time.Since(start))
	if err != nil {
		return
	}
	for status, n := range snap.byStatus {
		ch <- prometheus.MustNewConstMetric(c.connections, prometheus.GaugeValue, float64(n), status)
	}
	ch <- prometheus.MustNewConstMetric(c.scanned, prometheus.GaugeValue, float64(snap.scanned))
	truncated := 0.0
	if snap.truncated {
		truncated = 1
	}
	ch <- prometheus.MustNewConstMetric(c.truncated, prometheus.GaugeValue, truncated)
	for _, l := range snap.perConn {
		ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, l.lag, l.id)
	}
	ch <- prometheus.MustNewConstMetric(c.lagMax, prometheus.GaugeValue, snap.lagMax)
	ch <- prometheus.MustNewConstHistogram(c.lagHist, snap.lagCount, snap.lagSum, snap.lagBucket)
}

// snapshot returns a recent result or collects a new one.
func (c *ConnectionsCollector) snapshot() (*connSnapshot, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.opts.now()
	if c.last != nil && c.opts.fresh(c.lastAt, now) {
		return c.last, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.timeout)
	defer cancel()
	snap, err := c.collect(ctx, now)
	if err != nil {
		c.opts.logger.Warn("metrics: collecting connection metrics failed", zap.Error(err))
		return nil, err
	}
	c.last, c.lastAt = snap, now
	return snap, nil
}

// collect reads up to the scan limit of connections and the sync state of
// the active ones.
func (c *ConnectionsCollector) collect(ctx context.Context, now time.Time) (*connSnapshot, error) {
	snap := &connSnapshot{byStatus: map[string]int{}}
	for _, s := range []tokens.Status{tokens.StatusActive, tokens.StatusPaused, tokens.StatusNeedsReauth, tokens.StatusDisconnected} {
		snap.byStatus[string(s)] = 0
	}
	var active []*tokens.Connection
	after, read := "", 0
	for {
		page := min(listPage, c.opts.scanLimit-read)
		if page == 0 {
			// The limit is reached: one more id tells whether there is more.
			more, _, err := c.store.List(ctx, after, 1)
			if err != nil {
				return nil, fmt.Errorf("list connections: %w", err)
			}
			snap.truncated = len(more) > 0
			break
		}
		conns, next, err := c.store.List(ctx, after, page)
		if err != nil {
			return nil, fmt.Errorf("list connections: %w", err)
		}
		read += page
		for _, conn := range conns {
			snap.scanned++
			snap.byStatus[enumLabel(string(conn.Status))]++
			if conn.Status == tokens.StatusActive {
				active = append(active, conn)
			}
		}
		if next == "" {
			break
		}
		after = next
	}

	lags := make([]float64, len(active))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.opts.concurrency)
	for start := 0; start < len(active); start += listPage {
		batch := active[start:min(start+listPage, len(active))]
		g.Go(func() error {
			ids := make([]string, len(batch))
			for i, conn := range batch {
				ids[i] = conn.ID
			}
			states, err := c.state(gctx, ids)
			if err != nil {
				return fmt.Errorf("sync state of %d connections from %s: %w", len(ids), ids[0], err)
			}
			if len(states) != len(ids) {
				return fmt.Errorf("sync state of %d connections from %s: got %d states", len(ids), ids[0], len(states))
			}
			for i, st := range states {
				since := st.Cursor
				if since.IsZero() {
					since = batch[i].CreatedAt
				}
				lags[start+i] = max(now.Sub(since).Seconds(), 0)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}

	snap.lagBucket = make(map[float64]uint64, len(lagBuckets))
	for _, b := range lagBuckets {
		snap.lagBucket[b] = 0
	}
	for i, lag := range lags {
		if i < c.limit {
			snap.perConn = append(snap.perConn, connLag{id: active[i].ID, lag: lag})
		}
		snap.lagMax = max(snap.lagMax, lag)
		snap.lagCount++
		snap.lagSum += lag
		for _, b := range lagBuckets {
			if lag <= b {
				snap.lagBucket[b]++
			}
		}
	}
	return snap, nil
}
