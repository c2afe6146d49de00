package metrics

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// QueueInspector is the part of *asynq.Inspector the QueueCollector uses.
// Build the inspector with asynq.NewInspectorFromRedisClient on the
// process's shared Redis client.
type QueueInspector interface {
	Queues() ([]string, error)
	GetQueueInfo(queue string) (*asynq.QueueInfo, error)
}

// queueNamespace names the asynq queue metrics as asynq's own exporter
// (github.com/hibiken/asynq/x/metrics) does, so asynqmon's metrics view
// (asynqmon.Options.PrometheusAddress) and existing asynq dashboards work.
const queueNamespace = "asynq"

// queueStates are the task states of asynq_tasks_enqueued_total.
var queueStates = []string{"pending", "active", "scheduled", "retry", "archived", "completed", "aggregating"}

// QueueCollector is a prometheus.Collector that reads asynq's queue
// statistics at scrape time: tasks per queue and state, queue size,
// latency (age of the oldest pending task), approximate memory, processed
// and failed totals, and whether the queue is paused.
//
// Names follow asynq's x/metrics exporter (asynq_*) so asynqmon's metrics
// view can query them. Two differences: the paused flag is
// asynq_queue_paused (asynq's exporter calls that gauge
// asynq_queue_paused_total) and an "aggregating" state is reported.
// asynq_tasks_enqueued_total keeps asynq's name although it is a gauge (the
// number of tasks now in each state); asynqmon queries it by that name.
//
// # Cost and timeout
//
// A collection is one SMEMBERS plus one Lua script per queue (asynq samples
// task sizes for the memory figure), so its cost grows with the number of
// queues, not of tasks. asynq's Inspector takes no context, so the timeout
// is applied around it: a collection that runs out of time reports failure,
// its Redis calls finish in the background (bounded by the Redis client's own
// read and write timeouts), and no second collection starts while one is
// still running: later scrapes wait for it (within their own timeout) and
// use its result. Register it in one process only.
//
// Collect is safe for concurrent use.
type QueueCollector struct {
	insp   QueueInspector
	opts   collectorOptions
	scrape scrapeDescs

	tasks, size, latency, memory, processed, failed, paused *prometheus.Desc

	mu      sync.Mutex // guards running, last, lastErr, lastAt
	running chan struct{}
	last    []*asynq.QueueInfo
	lastErr error
	lastAt  time.Time // when last was taken; zero if lastErr is set
}

// NewQueueCollector returns a collector over insp's queues. WithScanLimit and
// WithConcurrency do not apply.
func NewQueueCollector(insp QueueInspector, opts ...CollectorOption) (*QueueCollector, error) {
	if insp == nil {
		return nil, errors.New("metrics: NewQueueCollector needs a QueueInspector")
	}
	o, err := buildOptions(opts)
	if err != nil {
		return nil, err
	}
	q := []string{"queue"}
	name := func(n string) string { return prometheus.BuildFQName(queueNamespace, "", n) }
	return &QueueCollector{
		insp:   insp,
		opts:   o,
		scrape: newScrapeDescs("asynq_queues"),
		tasks: prometheus.NewDesc(name("tasks_enqueued_total"),
			"Tasks now in the queue, by state (a gauge; the name is asynq's).", []string{"queue", "state"}, nil),
		size: prometheus.NewDesc(name("queue_size"),
			"Tasks in the queue (pending, active, scheduled, retry, aggregating and archived).", q, nil),
		latency: prometheus.NewDesc(name("queue_latency_seconds"),
			"Age of the oldest pending task in the queue.", q, nil),
		memory: prometheus.NewDesc(name("queue_memory_usage_approx_bytes"),
			"Approximate Redis memory used by the queue and its tasks (sampled).", q, nil),
		processed: prometheus.NewDesc(name("tasks_processed_total"),
			"Tasks processed (succeeded or failed).", q, nil),
		failed: prometheus.NewDesc(name("tasks_failed_total"),
			"Tasks whose processing failed.", q, nil),
		paused: prometheus.NewDesc(name("queue_paused"),
			"1 if the queue is paused, else 0.", q, nil),
	}, nil
}

// Describe implements prometheus.Collector.
func (c *QueueCollector) Describe(ch chan<- *prometheus.Desc) {
	c.scrape.describe(ch)
	for _, d := range []*prometheus.Desc{c.tasks, c.size, c.latency, c.memory, c.processed, c.failed, c.paused} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *QueueCollector) Collect(ch chan<- prometheus.Metric) {
	start := time.Now()
	infos, err := c.snapshot()
	c.scrape.report(ch, err == nil, time.Since(start))
	if err != nil {
		return
	}
	for _, in := range infos {
		q := in.Queue
		for i, n := range []int{in.Pending, in.Active, in.Scheduled, in.Retry, in.Archived, in.Completed, in.Aggregating} {
			ch <- prometheus.MustNewConstMetric(c.tasks, prometheus.GaugeValue, float64(n), q, queueStates[i])
		}
		ch <- prometheus.MustNewConstMetric(c.size, prometheus.GaugeValue, float64(in.Size), q)
		ch <- prometheus.MustNewConstMetric(c.latency, prometheus.GaugeValue, in.Latency.Seconds(), q)
		ch <- prometheus.MustNewConstMetric(c.memory, prometheus.GaugeValue, float64(in.MemoryUsage), q)
		ch <- prometheus.MustNewConstMetric(c.processed, prometheus.CounterValue, float64(in.ProcessedTotal), q)
		ch <- prometheus.MustNewConstMetric(c.failed, prometheus.CounterValue, float64(in.FailedTotal), q)
		paused := 0.0
		if in.Paused {
			paused = 1
		}
		ch <- prometheus.MustNewConstMetric(c.paused, prometheus.GaugeValue, paused, q)
	}
}

// snapshot returns a recent result, or the result of the collection in
// progress (starting one if none runs), waiting for it at most the timeout.
func (c *QueueCollector) snapshot() ([]*asynq.QueueInfo, error) {
	c.mu.Lock()
	if c.lastErr == nil && c.last != nil && c.opts.fresh(c.lastAt, c.opts.now()) {
		infos := c.last
		c.mu.Unlock()
		return infos, nil
	}
	if c.running == nil {
		done := make(chan struct{})
		c.running = done
		go c.run(done)
	}
	done := c.running
	c.mu.Unlock()

	t := time.NewTimer(c.opts.timeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		err := fmt.Errorf("asynq queue statistics took longer than %s", c.opts.timeout)
		c.opts.logger.Warn("metrics: collecting queue metrics failed", zap.Error(err))
		return nil, err
	}
	// The result is that of the collection waited for, or of a later one.
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last, c.lastErr
}

// run collects once and publishes the result.
func (c *QueueCollector) run(done chan struct{}) {
	infos, err := c.read()
	if err != nil {
		c.opts.logger.Warn("metrics: collecting queue metrics failed", zap.Error(err))
	}
	c.mu.Lock()
	c.last, c.lastErr, c.lastAt = infos, err, time.Time{}
	if err == nil {
		c.lastAt = c.opts.now()
	}
	c.running = nil
	c.mu.Unlock()
	close(done)
}

func (c *QueueCollector) read() ([]*asynq.QueueInfo, error) {
	names, err := c.insp.Queues()
	if err != nil {
		return nil, fmt.Errorf("asynq queues: %w", err)
	}
	infos := make([]*asynq.QueueInfo, 0, len(names))
	for _, n := range names {
		in, err := c.insp.GetQueueInfo(n)
		if err != nil {
			return nil, fmt.Errorf("asynq queue %q: %w", n, err)
		}
		infos = append(infos, in)
	}
	return infos, nil
}
