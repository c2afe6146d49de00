package metrics

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/notionsync/notionsync/internal/control"
	"github.com/notionsync/notionsync/sync/notionclient"
	"github.com/notionsync/notionsync/tokens"
)

// Namespace prefixes every metric of this package except the asynq queue
// metrics (see QueueCollector).
const Namespace = "notionsync"

// Histogram buckets, in seconds.
var (
	// lockWaitBuckets covers an uncontended lock (microseconds) up to a wait
	// for another process's whole refresh (tokens' MaxWait, about 80s).
	lockWaitBuckets = []float64{.001, .005, .01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120}
	// tokenCallBuckets covers one token-endpoint call up to its deadline
	// (tokens' CallTimeout, 10s by default).
	tokenCallBuckets = []float64{.025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
	// refreshBuckets covers a whole refresh, retries included.
	refreshBuckets = []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120}
	// requestBuckets covers one HTTP exchange with Notion.
	requestBuckets = []float64{.025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}
	// controlBuckets covers a control-plane request (an OAuth callback does
	// a code exchange; the refresh-now API may wait for a refresh).
	controlBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}
	// tickBuckets covers one scheduler tick.
	tickBuckets = []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
)

// Metrics holds the event metrics of one process: counters and histograms
// fed by the hooks of tokens, notionclient, jobs, control and schedule.
// Build it with New; attach it with TokenHooks, NotionObserver, JobHooks,
// ControlHooks and ScheduleHooks. A process registers one Metrics, whatever
// components it runs; series of components it does not run stay at zero.
//
// All methods, and every hook or observer they return, are safe for
// concurrent use. The hooks only update in-memory series (atomic adds and a
// label lookup); they never block and never touch Redis.
type Metrics struct {
	// tokens
	refreshes      *prometheus.CounterVec // outcome
	refreshSeconds prometheus.Histogram
	needsReauth    *prometheus.CounterVec // reason
	lockWait       prometheus.Histogram
	lockBusy       prometheus.Counter
	tokenEndpoint  *prometheus.HistogramVec // result
	// notionclient
	notionRequests *prometheus.CounterVec // method, status
	notionSeconds  prometheus.Histogram
	notionLimited  *prometheus.CounterVec // reason
	notionBackoff  *prometheus.CounterVec // reason
	// jobs
	pagesSynced     prometheus.Counter
	sweeps          prometheus.Counter
	sweepDiscovered prometheus.Counter
	sweepEnqueued   prometheus.Counter
	cursorAdvances  prometheus.Counter
	objectsErrored  prometheus.Counter
	reconciles      prometheus.Counter
	reconObjects    *prometheus.CounterVec // result
	// control
	controlRequests *prometheus.CounterVec   // route, status
	controlSeconds  *prometheus.HistogramVec // route
	oauthCallbacks  *prometheus.CounterVec   // outcome
	notionWebhooks  *prometheus.CounterVec   // outcome
	reauthNotified  *prometheus.CounterVec   // outcome
	reauthAttempts  *prometheus.CounterVec   // outcome
	// schedule
	leader          prometheus.Gauge
	leaderChanges   prometheus.Counter
	ticks           prometheus.Counter
	tickSeconds     prometheus.Histogram
	refreshDue      prometheus.Counter
	refreshEnqueued prometheus.Counter
	sweepsDue       prometheus.Counter
	sweepsEnqueued  prometheus.Counter
	scheduleSkipped prometheus.Counter
	discovered      prometheus.Counter
	reaped          prometheus.Counter
	tickConnErrors  prometheus.Counter
}

// New creates the metrics and registers them with reg (wrap reg with
// prometheus.WrapRegistererWith to add constant labels). It fails if reg is
// nil or a metric of the same name is already registered there (for example
// by an earlier New on the same registry); nothing stays registered then.
func New(reg prometheus.Registerer) (*Metrics, error) {
	if reg == nil {
		return nil, errors.New("metrics: a prometheus.Registerer is required")
	}
	b := builder{}
	m := &Metrics{
		refreshes: b.counterVec("refreshes_total",
			"Token refreshes that called the token endpoint, by outcome (tokens.Outcome).", "outcome"),
		refreshSeconds: b.histogram("refresh_duration_seconds",
			"Duration of token refreshes that called the token endpoint, retries included.", refreshBuckets),
		needsReauth: b.counterVec("needs_reauth_total",
			"Connections this process marked needs_reauth, by reason (tokens.Reason): revoked, lost_rotation_response, no_refresh_token.", "reason"),
		lockWait: b.histogram("refresh_lock_wait_seconds",
			"Time a refresh waited before it held the connection's refresh lock.", lockWaitBuckets),
		lockBusy: b.counter("refresh_lock_busy_total",
			"Refreshes that found another process refreshing the connection and waited for it."),
		tokenEndpoint: b.histogramVec("token_endpoint_seconds",
			"Latency of token-endpoint calls, by result: success or the failure kind (outcome_unknown, not_processed, invalid_grant, invalid_client, permanent).",
			tokenCallBuckets, "result"),
		notionRequests: b.counterVec("notion_requests_total",
			"HTTP exchanges with the Notion API (retries included), by method and response status (network_error: no response).", "method", "status"),
		notionSeconds: b.histogram("notion_request_seconds",
			"Duration of HTTP exchanges with the Notion API.", requestBuckets),
		notionLimited: b.counterVec("notion_rate_limited_total",
			"Notion requests answered 429/529 (retry_after) or refused before sending (local_budget, backoff).", "reason"),
		notionBackoff: b.counterVec("notion_backoff_seconds_total",
			"Seconds spent waiting in-process before Notion requests, by reason (local_budget, backoff, retry_after, server_error).", "reason"),
		pagesSynced: b.counter("pages_synced_total",
			"Pages written to the sink."),
		sweeps: b.counter("sweeps_total",
			"Finished connection sweeps."),
		sweepDiscovered: b.counter("sweep_objects_discovered_total",
			"Objects sweeps discovered as changed since the cursor."),
		sweepEnqueued: b.counter("sweep_tasks_enqueued_total",
			"Tasks sweeps newly enqueued for discovered objects."),
		cursorAdvances: b.counter("sync_cursor_advances_total",
			"Times a connection's sync cursor moved forward."),
		objectsErrored: b.counter("objects_errored_total",
			"Per-object sync errors that did not stop the connection's sync."),
		reconciles: b.counter("reconcile_passes_total",
			"Finished reconciliation passes (full comparisons of a connection's sink with what Notion shows)."),
		reconObjects: b.counterVec("reconcile_objects_total",
			"Objects reconciliation passes acted on, by result: found_late (missing or stale in the sink, handed to the drain), confirmed_gone (a direct GET confirmed it trashed, unshared or restricted: stored as a tombstone), unreachable (its confirming GET failed transiently: left alone), retried (a permanent per-object error retried).", "result"),
		controlRequests: b.counterVec("control_requests_total",
			"Control-plane HTTP requests, by route pattern (unmatched: none) and status code.", "route", "status"),
		controlSeconds: b.histogramVec("control_request_seconds",
			"Control-plane HTTP request duration, by route pattern.", controlBuckets, "route"),
		oauthCallbacks: b.counterVec("oauth_callbacks_total",
			"OAuth callbacks, by outcome (control.OAuthOutcome); sync_not_enqueued comes in addition to connected or reauthorized.", "outcome"),
		notionWebhooks: b.counterVec("notion_webhooks_total",
			"Inbound Notion webhooks, by outcome (control.WebhookOutcome).", "outcome"),
		reauthNotified: b.counterVec("reauth_notifications_total",
			"Outbound needs_reauth notifications that ended, by outcome (delivered, failed, dropped).", "outcome"),
		reauthAttempts: b.counterVec("reauth_notification_attempts_total",
			"Delivery attempts of outbound needs_reauth notifications, by the notification's outcome.", "outcome"),
		leader: b.gauge("scheduler_leader",
			"1 while this scheduler instance holds the leader lease, else 0."),
		leaderChanges: b.counter("scheduler_leader_changes_total",
			"Times this scheduler instance gained or lost the leader lease."),
		ticks: b.counter("scheduler_ticks_total",
			"Scheduler ticks run while leading."),
		tickSeconds: b.histogram("scheduler_tick_duration_seconds",
			"Wall time of scheduler ticks.", tickBuckets),
		refreshDue: b.counter("scheduler_refreshes_due_total",
			"Connections the due index returned to scheduler ticks."),
		refreshEnqueued: b.counter("scheduler_refreshes_enqueued_total",
			"Refresh tasks scheduler ticks enqueued (or found already queued)."),
		sweepsDue: b.counter("scheduler_sweeps_due_total",
			"Sweeps due at scheduler ticks."),
		sweepsEnqueued: b.counter("scheduler_sweeps_enqueued_total",
			"Sweep tasks scheduler ticks enqueued (or found already queued)."),
		scheduleSkipped: b.counter("scheduler_skipped_total",
			"Due entries scheduler ticks skipped (paused, needs_reauth, disconnected or no longer due)."),
		discovered: b.counter("scheduler_discovered_total",
			"Connections scheduler ticks added to the sweep schedule."),
		reaped: b.counter("scheduler_reaped_total",
			"Leases of dead workers' tasks (a drain, a sweep, a database task) scheduler ticks handed to new tasks."),
		tickConnErrors: b.counter("scheduler_connection_errors_total",
			"Per-connection failures (a read or an enqueue) in scheduler ticks; retried on a later tick."),
	}

	// Start every known label value at zero, so that rate() and absent()
	// work from the first scrape instead of from the first event.
	for _, o := range []tokens.Outcome{tokens.OutcomeRefreshed, tokens.OutcomeTransient, tokens.OutcomeNeedsReauth,
		tokens.OutcomeClientRejected, tokens.OutcomeStaleWrite} {
		m.refreshes.WithLabelValues(string(o))
	}
	for _, r := range []tokens.Reason{tokens.ReasonRevoked, tokens.ReasonLostRotation, tokens.ReasonNoRefreshToken} {
		m.needsReauth.WithLabelValues(string(r))
	}
	for _, r := range []string{notionclient.ReasonLocalBudget, notionclient.ReasonBackoff, notionclient.ReasonRetryAfter} {
		m.notionLimited.WithLabelValues(r)
		m.notionBackoff.WithLabelValues(r)
	}
	m.notionBackoff.WithLabelValues(notionclient.ReasonServerError)
	for _, r := range []string{"found_late", "confirmed_gone", "unreachable", "retried"} {
		m.reconObjects.WithLabelValues(r)
	}
	for _, o := range []control.OAuthOutcome{control.OAuthConnected, control.OAuthReauthorized, control.OAuthBadRequest,
		control.OAuthBadState, control.OAuthDenied, control.OAuthProviderError, control.OAuthExchangeFailed,
		control.OAuthWorkspaceMismatch, control.OAuthStoreFailed, control.OAuthSyncNotEnqueued} {
		m.oauthCallbacks.WithLabelValues(string(o))
	}
	for _, o := range []control.NotificationOutcome{control.NotificationDelivered, control.NotificationFailed,
		control.NotificationDropped} {
		m.reauthNotified.WithLabelValues(string(o))
		m.reauthAttempts.WithLabelValues(string(o))
	}

	if err := registerAll(reg, b.all); err != nil {
		return nil, err
	}
	return m, nil
}

// registerAll registers cs with reg, or nothing: on the first failure it
// unregisters what it had registered.
func registerAll(reg prometheus.Registerer, cs []prometheus.Collector) error {
	for i, c := range cs {
		if err := reg.Register(c); err != nil {
			for _, done := range cs[:i] {
				reg.Unregister(done)
			}
			return fmt.Errorf("metrics: register: %w", err)
		}
	}
	return nil
}

// builder creates metrics in Namespace and remembers them for registration.
type builder struct {
	all []prometheus.Collector
}

func (b *builder) add(c prometheus.Collector) { b.all = append(b.all, c) }

func (b *builder) counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help})
	b.add(c)
	return c
}

func (b *builder) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help}, labels)
	b.add(c)
	return c
}

func (b *builder) gauge(name, help string) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help})
	b.add(g)
	return g
}

func (b *builder) histogram(name, help string, buckets []float64) prometheus.Histogram {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Name: name, Help: help, Buckets: buckets})
	b.add(h)
	return h
}

func (b *builder) histogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: name, Help: help, Buckets: buckets}, labels)
	b.add(h)
	return h
}

// maxEnumLen bounds an enum label value.
const maxEnumLen = 40

// enumLabel returns s if it looks like one of the enum constants the hooks
// pass (lower-case letters, digits and '_', starting with a letter, at most
// maxEnumLen bytes), else "other". Enum values come from code, so the set
// stays small; anything else (a free-form string passed by mistake) cannot
// create series without bound.
func enumLabel(s string) string {
	if s == "" || len(s) > maxEnumLen || s[0] < 'a' || s[0] > 'z' {
		return "other"
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_') {
			return "other"
		}
	}
	return s
}

// statusLabel is an HTTP status code as a label value: "network_error" for
// 0 (no response), "invalid" outside 100-599.
func statusLabel(code int) string {
	switch {
	case code == 0:
		return "network_error"
	case code < 100 || code > 599:
		return "invalid"
	}
	return strconv.Itoa(code)
}

// methodLabel is an HTTP method as a label value; unusual methods are
// "other".
func methodLabel(m string) string {
	switch m {
	case "GET", "POST", "PATCH", "PUT", "DELETE", "HEAD", "OPTIONS":
		return m
	}
	return "other"
}

// routeLabel is a control-plane route pattern as a label value. Patterns
// come from the server's mux, so the set is fixed by code.
func routeLabel(pattern string) string {
	if pattern == "" {
		return "unmatched"
	}
	return pattern
}
