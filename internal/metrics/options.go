package metrics

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Defaults of the scrape-time collectors.
const (
	// DefaultCollectTimeout bounds the Redis work of one collection. Keep it
	// below Prometheus' scrape_timeout (10s by default).
	DefaultCollectTimeout = 5 * time.Second
	// DefaultMinInterval is how long a collection's result is reused, so
	// that several Prometheus servers scraping the same process (an HA
	// pair) cost one read of Redis, not one each.
	DefaultMinInterval = 5 * time.Second
	// DefaultScanLimit is how many connections the ConnectionsCollector
	// reads at most per collection when the per-connection limit is lower.
	DefaultScanLimit = 10000
	// DefaultConcurrency is how many batches of sync states (up to 100
	// connections, one Redis round trip each) the ConnectionsCollector
	// reads at once.
	DefaultConcurrency = 16
)

// CollectorOption configures NewConnectionsCollector and NewQueueCollector.
type CollectorOption func(*collectorOptions)

type collectorOptions struct {
	timeout     time.Duration
	minInterval time.Duration
	logger      *zap.Logger
	now         func() time.Time
	scanLimit   int
	concurrency int
}

// WithTimeout bounds one collection's Redis work (default
// DefaultCollectTimeout). A collection that runs out of time reports
// notionsync_scrape_collector_success 0 and none of its other series.
func WithTimeout(d time.Duration) CollectorOption {
	return func(o *collectorOptions) { o.timeout = d }
}

// WithMinInterval sets how long a successful collection's result is reused
// (default DefaultMinInterval; a negative value disables reuse). Collections
// that overlap wait for the one in progress and share its result.
func WithMinInterval(d time.Duration) CollectorOption {
	return func(o *collectorOptions) { o.minInterval = d }
}

// WithLogger receives a warning for each failed collection (default: no
// logs).
func WithLogger(l *zap.Logger) CollectorOption {
	return func(o *collectorOptions) { o.logger = l }
}

// WithClock sets the clock that sync lag and result reuse are measured with
// (default time.Now).
func WithClock(now func() time.Time) CollectorOption {
	return func(o *collectorOptions) { o.now = now }
}

// WithScanLimit caps how many connections the ConnectionsCollector reads per
// collection (default the larger of its per-connection limit and
// DefaultScanLimit; never below the per-connection limit). The aggregate
// series cover the connections read; when there are more,
// notionsync_connections_scan_truncated is 1. Ignored by QueueCollector.
func WithScanLimit(n int) CollectorOption {
	return func(o *collectorOptions) { o.scanLimit = n }
}

// WithConcurrency sets how many batches of sync states (up to 100
// connections each, one SyncStateFunc call) the ConnectionsCollector reads
// at once (default DefaultConcurrency). Ignored by QueueCollector.
func WithConcurrency(n int) CollectorOption {
	return func(o *collectorOptions) { o.concurrency = n }
}

func buildOptions(opts []CollectorOption) (collectorOptions, error) {
	var o collectorOptions
	for _, f := range opts {
		f(&o)
	}
	switch {
	case o.timeout < 0:
		return o, errors.New("metrics: WithTimeout must not be negative")
	case o.scanLimit < 0:
		return o, errors.New("metrics: WithScanLimit must not be negative")
	case o.concurrency < 0:
		return o, errors.New("metrics: WithConcurrency must not be negative")
	}
	if o.timeout == 0 {
		o.timeout = DefaultCollectTimeout
	}
	if o.minInterval == 0 {
		o.minInterval = DefaultMinInterval
	}
	if o.concurrency == 0 {
		o.concurrency = DefaultConcurrency
	}
	if o.logger == nil {
		o.logger = zap.NewNop()
	}
	if o.now == nil {
		o.now = time.Now
	}
	return o, nil
}

// fresh reports whether a result taken at `at` may still be served at now.
func (o *collectorOptions) fresh(at, now time.Time) bool {
	if at.IsZero() || o.minInterval < 0 {
		return false
	}
	age := now.Sub(at)
	return age >= 0 && age < o.minInterval
}

// scrapeDescs are the self-monitoring series every scrape-time collector
// reports, told apart by a constant "collector" label (the node_exporter
// convention).
type scrapeDescs struct {
	success, duration *prometheus.Desc
}

func newScrapeDescs(collector string) scrapeDescs {
	l := prometheus.Labels{"collector": collector}
	return scrapeDescs{
		success: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "scrape", "collector_success"),
			"1 if the collector's last collection read Redis successfully (or reused a recent result), else 0.", nil, l),
		duration: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "scrape", "collector_duration_seconds"),
			"Time the collector's last collection took.", nil, l),
	}
}

func (d scrapeDescs) describe(ch chan<- *prometheus.Desc) {
	ch <- d.success
	ch <- d.duration
}

func (d scrapeDescs) report(ch chan<- prometheus.Metric, ok bool, took time.Duration) {
	v := 0.0
	if ok {
		v = 1
	}
	ch <- prometheus.MustNewConstMetric(d.success, prometheus.GaugeValue, v)
	ch <- prometheus.MustNewConstMetric(d.duration, prometheus.GaugeValue, took.Seconds())
}
