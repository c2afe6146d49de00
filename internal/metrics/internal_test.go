package metrics

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/notionsync/notionsync/jobs"
	"github.com/notionsync/notionsync/sync/notionclient"
	"github.com/notionsync/notionsync/tokens"
)

// TestHooksConcurrently fires hooks from many goroutines (run with -race)
// and checks that no event was lost.
func TestHooksConcurrently(t *testing.T) {
	t.Parallel()
	m, err := New(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	th, jh, obs := m.TokenHooks(tokens.Hooks{}), m.JobHooks(jobs.Hooks{}), m.NotionObserver()
	const goroutines, each = 16, 500
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range each {
				th.OnRefresh("c", tokens.OutcomeRefreshed, time.Millisecond)
				th.OnLockBusy("c")
				jh.OnPageSynced("c")
				obs.OnRequest("c", "GET", 200, time.Millisecond)
				obs.OnBackoffWait("c", notionclient.ReasonBackoff, time.Second)
			}
		})
	}
	wg.Wait()
	const n = goroutines * each
	for name, got := range map[string]float64{
		"refreshes_total{refreshed}":      testutil.ToFloat64(m.refreshes.WithLabelValues("refreshed")),
		"refresh_lock_busy_total":         testutil.ToFloat64(m.lockBusy),
		"pages_synced_total":              testutil.ToFloat64(m.pagesSynced),
		"notion_requests_total{GET,200}":  testutil.ToFloat64(m.notionRequests.WithLabelValues("GET", "200")),
		"notion_backoff_seconds{backoff}": testutil.ToFloat64(m.notionBackoff.WithLabelValues("backoff")),
	} {
		if got != n {
			t.Errorf("%s = %v, want %d", name, got, n)
		}
	}
}

func TestLabelHelpers(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"refreshed": "refreshed", "lost_rotation_response": "lost_rotation_response", "a1": "a1",
		"": "other", "Refreshed": "other", "1abc": "other", "has space": "other", "dash-ed": "other",
		"a_very_long_value_that_goes_beyond_forty_bytes": "other",
	} {
		if got := enumLabel(in); got != want {
			t.Errorf("enumLabel(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[int]string{0: "network_error", 200: "200", 529: "529", 99: "invalid", 600: "invalid", -1: "invalid"} {
		if got := statusLabel(in); got != want {
			t.Errorf("statusLabel(%d) = %q, want %q", in, got, want)
		}
	}
	if got := tokenCallResult(&tokens.ProviderError{Kind: tokens.ErrorKind(99)}); got != "other" {
		t.Errorf("tokenCallResult of an unknown kind = %q, want other", got)
	}
}

// blockingInspector answers Queues only when released.
type blockingInspector struct {
	release chan struct{}
	calls   atomic.Int32
	err     error
}

func (b *blockingInspector) Queues() ([]string, error) {
	b.calls.Add(1)
	<-b.release
	return []string{"sync"}, b.err
}

func (b *blockingInspector) GetQueueInfo(q string) (*asynq.QueueInfo, error) {
	return &asynq.QueueInfo{Queue: q, Pending: 4, Size: 4}, nil
}

// waitIdle waits for the collection in progress, if any, to publish its
// result.
func waitIdle(c *QueueCollector) {
	c.mu.Lock()
	done := c.running
	c.mu.Unlock()
	if done != nil {
		<-done
	}
}

func success(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "notionsync_scrape_collector_success" {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatal("no notionsync_scrape_collector_success")
	return 0
}

// TestQueueCollectorTimeout: a slow Redis fails the scrape after the
// timeout, no second collection piles up behind the first, and the first
// one's result serves the next scrape once it arrives.
func TestQueueCollectorTimeout(t *testing.T) {
	t.Parallel()
	insp := &blockingInspector{release: make(chan struct{})}
	c, err := NewQueueCollector(insp, WithTimeout(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if got := success(t, c); got != 0 {
			t.Fatalf("scrape %d while Redis hangs: success = %v, want 0", i, got)
		}
		if n := testutil.CollectAndCount(c, "asynq_queue_size"); n != 0 {
			t.Fatalf("scrape %d while Redis hangs: %d queue series, want 0", i, n)
		}
	}
	if n := insp.calls.Load(); n != 1 {
		t.Fatalf("%d collections started while the first hung, want 1", n)
	}
	close(insp.release)
	waitIdle(c)
	if got := success(t, c); got != 1 {
		t.Errorf("scrape after Redis answered: success = %v, want 1", got)
	}
	if got := testutil.CollectAndCount(c, "asynq_tasks_enqueued_total"); got != len(queueStates) {
		t.Errorf("%d task series, want %d", got, len(queueStates))
	}
	if n := insp.calls.Load(); n != 1 {
		t.Errorf("%d collections in all, want 1 (the late result is reused)", n)
	}
}

// TestQueueCollectorErrorIsNotReused: a failed collection is not cached.
func TestQueueCollectorErrorIsNotReused(t *testing.T) {
	t.Parallel()
	insp := &blockingInspector{release: make(chan struct{}), err: errors.New("READONLY")}
	close(insp.release)
	c, err := NewQueueCollector(insp)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if got := success(t, c); got != 0 {
			t.Errorf("scrape %d: success = %v, want 0", i, got)
		}
	}
	if n := insp.calls.Load(); n != 2 {
		t.Errorf("%d collections, want 2 (errors are not reused)", n)
	}
}
