package metrics_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/notionsync/notionsync/internal/control"
	"github.com/notionsync/notionsync/internal/metrics"
	"github.com/notionsync/notionsync/internal/schedule"
	"github.com/notionsync/notionsync/jobs"
	"github.com/notionsync/notionsync/sync/notionclient"
	"github.com/notionsync/notionsync/tokens"
)

func newMetrics(t *testing.T) (*metrics.Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	return m, reg
}

// TestHooksRecordTheRightSeries fires each hook once on fresh metrics and
// checks that exactly the expected samples moved.
func TestHooksRecordTheRightSeries(t *testing.T) {
	t.Parallel()
	const ns = "notionsync_"
	tests := []struct {
		name string
		fire func(m *metrics.Metrics)
		want map[string]float64
	}{
		{
			name: "refresh",
			fire: func(m *metrics.Metrics) {
				m.TokenHooks(tokens.Hooks{}).OnRefresh("c1", tokens.OutcomeRefreshed, 2*time.Second)
			},
			want: map[string]float64{
				ns + `refreshes_total{outcome="refreshed"}`: 1,
				ns + "refresh_duration_seconds_count":       1,
				ns + "refresh_duration_seconds_sum":         2,
			},
		},
		{
			name: "refresh with an outcome that is not an identifier",
			fire: func(m *metrics.Metrics) {
				m.TokenHooks(tokens.Hooks{}).OnRefresh("c1", tokens.Outcome("Bad Outcome!"), time.Second)
			},
			want: map[string]float64{
				ns + `refreshes_total{outcome="other"}`: 1,
				ns + "refresh_duration_seconds_count":   1,
				ns + "refresh_duration_seconds_sum":     1,
			},
		},
		{
			name: "token call succeeded",
			fire: func(m *metrics.Metrics) {
				m.TokenHooks(tokens.Hooks{}).OnTokenCall("c1", nil, 500*time.Millisecond)
			},
			want: map[string]float64{
				ns + `token_endpoint_seconds_count{result="success"}`: 1,
				ns + `token_endpoint_seconds_sum{result="success"}`:   0.5,
			},
		},
		{
			name: "token call invalid_grant",
			fire: func(m *metrics.Metrics) {
				err := &tokens.ProviderError{Kind: tokens.KindInvalidGrant, StatusCode: 400, Code: "invalid_grant"}
				m.TokenHooks(tokens.Hooks{}).OnTokenCall("c1", err, 250*time.Millisecond)
			},
			want: map[string]float64{
				ns + `token_endpoint_seconds_count{result="invalid_grant"}`: 1,
				ns + `token_endpoint_seconds_sum{result="invalid_grant"}`:   0.25,
			},
		},
		{
			name: "token call wrapped not_processed",
			fire: func(m *metrics.Metrics) {
				err := fmt.Errorf("refresh: %w", &tokens.ProviderError{Kind: tokens.KindNotProcessed, StatusCode: 429})
				m.TokenHooks(tokens.Hooks{}).OnTokenCall("c1", err, time.Second)
			},
			want: map[string]float64{
				ns + `token_endpoint_seconds_count{result="not_processed"}`: 1,
				ns + `token_endpoint_seconds_sum{result="not_processed"}`:   1,
			},
		},
		{
			name: "token call with an unclassified error",
			fire: func(m *metrics.Metrics) {
				m.TokenHooks(tokens.Hooks{}).OnTokenCall("c1", errors.New("connection reset"), time.Second)
			},
			want: map[string]float64{
				ns + `token_endpoint_seconds_count{result="outcome_unknown"}`: 1,
				ns + `token_endpoint_seconds_sum{result="outcome_unknown"}`:   1,
			},
		},
		{
			name: "lock acquired",
			fire: func(m *metrics.Metrics) {
				m.TokenHooks(tokens.Hooks{}).OnLockAcquired("c1", 3*time.Second)
			},
			want: map[string]float64{
				ns + "refresh_lock_wait_seconds_count": 1,
				ns + "refresh_lock_wait_seconds_sum":   3,
			},
		},
		{
			name: "lock busy",
			fire: func(m *metrics.Metrics) { m.TokenHooks(tokens.Hooks{}).OnLockBusy("c1") },
			want: map[string]float64{ns + "refresh_lock_busy_total": 1},
		},
		{
			name: "needs reauth",
			fire: func(m *metrics.Metrics) {
				m.TokenHooks(tokens.Hooks{}).OnNeedsReauth("c1", tokens.ReasonLostRotation, "invalid_grant after a timeout")
			},
			want: map[string]float64{ns + `needs_reauth_total{reason="lost_rotation_response"}`: 1},
		},
		{
			name: "notion request",
			fire: func(m *metrics.Metrics) {
				m.NotionObserver().OnRequest("c1", "POST", 429, 250*time.Millisecond)
			},
			want: map[string]float64{
				ns + `notion_requests_total{method="POST",status="429"}`: 1,
				ns + "notion_request_seconds_count":                      1,
				ns + "notion_request_seconds_sum":                        0.25,
			},
		},
		{
			name: "notion request without a response",
			fire: func(m *metrics.Metrics) { m.NotionObserver().OnRequest("c1", "GET", 0, time.Second) },
			want: map[string]float64{
				ns + `notion_requests_total{method="GET",status="network_error"}`: 1,
				ns + "notion_request_seconds_count":                               1,
				ns + "notion_request_seconds_sum":                                 1,
			},
		},
		{
			name: "notion request with an odd method",
			fire: func(m *metrics.Metrics) { m.NotionObserver().OnRequest("c1", "BREW", 200, time.Second) },
			want: map[string]float64{
				ns + `notion_requests_total{method="other",status="200"}`: 1,
				ns + "notion_request_seconds_count":                       1,
				ns + "notion_request_seconds_sum":                         1,
			},
		},
		{
			name: "rate limited",
			fire: func(m *metrics.Metrics) {
				m.NotionObserver().OnRateLimited("c1", 30*time.Second, notionclient.ReasonRetryAfter)
			},
			want: map[string]float64{ns + `notion_rate_limited_total{reason="retry_after"}`: 1},
		},
		{
			name: "backoff wait",
			fire: func(m *metrics.Metrics) {
				m.NotionObserver().OnBackoffWait("c1", notionclient.ReasonLocalBudget, 1500*time.Millisecond)
			},
			want: map[string]float64{ns + `notion_backoff_seconds_total{reason="local_budget"}`: 1.5},
		},
		{
			name: "page synced",
			fire: func(m *metrics.Metrics) { m.JobHooks(jobs.Hooks{}).OnPageSynced("c1") },
			want: map[string]float64{ns + "pages_synced_total": 1},
		},
		{
			name: "sweep",
			fire: func(m *metrics.Metrics) { m.JobHooks(jobs.Hooks{}).OnSweep("c1", 5, 3) },
			want: map[string]float64{
				ns + "sweeps_total":                   1,
				ns + "sweep_objects_discovered_total": 5,
				ns + "sweep_tasks_enqueued_total":     3,
			},
		},
		{
			name: "cursor advanced",
			fire: func(m *metrics.Metrics) { m.JobHooks(jobs.Hooks{}).OnCursorAdvanced("c1", time.Now()) },
			want: map[string]float64{ns + "sync_cursor_advances_total": 1},
		},
		{
			name: "object error",
			fire: func(m *metrics.Metrics) {
				m.JobHooks(jobs.Hooks{}).OnObjectError("c1", "obj", errors.New("several data sources"))
			},
			want: map[string]float64{ns + "objects_errored_total": 1},
		},
		{
			name: "reconciliation pass",
			fire: func(m *metrics.Metrics) {
				m.JobHooks(jobs.Hooks{}).OnReconcile("c1", jobs.ReconcileCounts{FoundLate: 4, ConfirmedGone: 2, Unreachable: 1, Retried: 3, Requests: 9})
			},
			want: map[string]float64{
				ns + "reconcile_passes_total":                           1,
				ns + `reconcile_objects_total{result="found_late"}`:     4,
				ns + `reconcile_objects_total{result="confirmed_gone"}`: 2,
				ns + `reconcile_objects_total{result="unreachable"}`:    1,
				ns + `reconcile_objects_total{result="retried"}`:        3,
			},
		},
		{
			name: "control request",
			fire: func(m *metrics.Metrics) {
				m.ControlHooks(control.Hooks{}).OnRequest("GET /api/connections", 200, 500*time.Millisecond)
			},
			want: map[string]float64{
				ns + `control_requests_total{route="GET /api/connections",status="200"}`: 1,
				ns + `control_request_seconds_count{route="GET /api/connections"}`:       1,
				ns + `control_request_seconds_sum{route="GET /api/connections"}`:         0.5,
			},
		},
		{
			name: "control request that matched no route",
			fire: func(m *metrics.Metrics) { m.ControlHooks(control.Hooks{}).OnRequest("", 404, time.Second) },
			want: map[string]float64{
				ns + `control_requests_total{route="unmatched",status="404"}`: 1,
				ns + `control_request_seconds_count{route="unmatched"}`:       1,
				ns + `control_request_seconds_sum{route="unmatched"}`:         1,
			},
		},
		{
			name: "oauth callback",
			fire: func(m *metrics.Metrics) { m.ControlHooks(control.Hooks{}).OnOAuth(control.OAuthBadState) },
			want: map[string]float64{ns + `oauth_callbacks_total{outcome="bad_state"}`: 1},
		},
		{
			name: "notion webhook",
			fire: func(m *metrics.Metrics) {
				m.ControlHooks(control.Hooks{}).OnNotionWebhook(control.WebhookBadSignature)
			},
			want: map[string]float64{ns + `notion_webhooks_total{outcome="bad_signature"}`: 1},
		},
		{
			name: "reauth notification",
			fire: func(m *metrics.Metrics) {
				m.ControlHooks(control.Hooks{}).OnReauthNotification("c1", control.NotificationFailed, 3)
			},
			want: map[string]float64{
				ns + `reauth_notifications_total{outcome="failed"}`:         1,
				ns + `reauth_notification_attempts_total{outcome="failed"}`: 3,
			},
		},
		{
			name: "leader gained",
			fire: func(m *metrics.Metrics) { m.ScheduleHooks(schedule.Hooks{}).OnLeaderChange(true) },
			want: map[string]float64{
				ns + "scheduler_leader":               1,
				ns + "scheduler_leader_changes_total": 1,
			},
		},
		{
			name: "tick",
			fire: func(m *metrics.Metrics) {
				m.ScheduleHooks(schedule.Hooks{}).OnTick(schedule.TickStats{
					RefreshDue: 10, RefreshEnqueued: 9, SweepsDue: 8, SweepsEnqueued: 7,
					Skipped: 3, Discovered: 2, Reaped: 4, Errors: 1, Took: 250 * time.Millisecond,
				})
			},
			want: map[string]float64{
				ns + "scheduler_ticks_total":                 1,
				ns + "scheduler_tick_duration_seconds_count": 1,
				ns + "scheduler_tick_duration_seconds_sum":   0.25,
				ns + "scheduler_refreshes_due_total":         10,
				ns + "scheduler_refreshes_enqueued_total":    9,
				ns + "scheduler_sweeps_due_total":            8,
				ns + "scheduler_sweeps_enqueued_total":       7,
				ns + "scheduler_skipped_total":               3,
				ns + "scheduler_discovered_total":            2,
				ns + "scheduler_reaped_total":                4,
				ns + "scheduler_connection_errors_total":     1,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m, reg := newMetrics(t)
			before := series(t, reg)
			tt.fire(m)
			if d := sameSamples(changed(before, series(t, reg)), tt.want); d != "" {
				t.Error(d)
			}
		})
	}
}

func TestLeaderGaugeFollowsChanges(t *testing.T) {
	t.Parallel()
	m, reg := newMetrics(t)
	h := m.ScheduleHooks(schedule.Hooks{})
	for i, step := range []struct {
		leader  bool
		gauge   float64
		changes float64
	}{{true, 1, 1}, {false, 0, 2}, {true, 1, 3}} {
		h.OnLeaderChange(step.leader)
		s := series(t, reg)
		if got := s["notionsync_scheduler_leader"]; got != step.gauge {
			t.Errorf("step %d: scheduler_leader = %v, want %v", i, got, step.gauge)
		}
		if got := s["notionsync_scheduler_leader_changes_total"]; got != step.changes {
			t.Errorf("step %d: scheduler_leader_changes_total = %v, want %v", i, got, step.changes)
		}
	}
}

// call records one hook invocation.
type call struct {
	hook string
	args []any
}

type recorder struct{ calls []call }

func (r *recorder) add(hook string, args ...any) { r.calls = append(r.calls, call{hook, args}) }

// TestHooksChainToBase checks that every hook still calls the caller's own
// function with the same arguments, and that the test-only tokens hooks are
// passed through.
func TestHooksChainToBase(t *testing.T) {
	t.Parallel()
	m, _ := newMetrics(t)
	var rec recorder
	tokErr := errors.New("boom")
	cursor := time.Unix(1700000000, 0)
	stats := schedule.TickStats{RefreshDue: 1, Took: time.Millisecond}

	th := m.TokenHooks(tokens.Hooks{
		OnRefresh:          func(id string, o tokens.Outcome, d time.Duration) { rec.add("OnRefresh", id, o, d) },
		OnTokenCall:        func(id string, err error, d time.Duration) { rec.add("OnTokenCall", id, err, d) },
		OnLockAcquired:     func(id string, d time.Duration) { rec.add("OnLockAcquired", id, d) },
		OnLockBusy:         func(id string) { rec.add("OnLockBusy", id) },
		OnNeedsReauth:      func(id string, r tokens.Reason, detail string) { rec.add("OnNeedsReauth", id, r, detail) },
		BeforeTokenCall:    func(id string) { rec.add("BeforeTokenCall", id) },
		AfterTokenResponse: func(id string) { rec.add("AfterTokenResponse", id) },
	})
	th.OnRefresh("c", tokens.OutcomeTransient, time.Second)
	th.OnTokenCall("c", tokErr, time.Second)
	th.OnLockAcquired("c", time.Second)
	th.OnLockBusy("c")
	th.OnNeedsReauth("c", tokens.ReasonRevoked, "d")
	th.BeforeTokenCall("c")
	th.AfterTokenResponse("c")

	jh := m.JobHooks(jobs.Hooks{
		OnPageSynced:     func(id string) { rec.add("OnPageSynced", id) },
		OnSweep:          func(id string, d, e int) { rec.add("OnSweep", id, d, e) },
		OnCursorAdvanced: func(id string, c time.Time) { rec.add("OnCursorAdvanced", id, c) },
		OnObjectError:    func(id, obj string, err error) { rec.add("OnObjectError", id, obj, err) },
		OnReconcile:      func(id string, c jobs.ReconcileCounts) { rec.add("OnReconcile", id, c) },
	})
	jh.OnPageSynced("c")
	jh.OnSweep("c", 2, 1)
	jh.OnCursorAdvanced("c", cursor)
	jh.OnObjectError("c", "o", tokErr)
	jh.OnReconcile("c", jobs.ReconcileCounts{FoundLate: 1})

	ch := m.ControlHooks(control.Hooks{
		OnRequest:       func(r string, s int, d time.Duration) { rec.add("OnRequest", r, s, d) },
		OnOAuth:         func(o control.OAuthOutcome) { rec.add("OnOAuth", o) },
		OnNotionWebhook: func(o control.WebhookOutcome) { rec.add("OnNotionWebhook", o) },
		OnReauthNotification: func(id string, o control.NotificationOutcome, n int) {
			rec.add("OnReauthNotification", id, o, n)
		},
	})
	ch.OnRequest("GET /x", 201, time.Second)
	ch.OnOAuth(control.OAuthDenied)
	ch.OnNotionWebhook(control.WebhookEnqueued)
	ch.OnReauthNotification("c", control.NotificationDelivered, 1)

	sh := m.ScheduleHooks(schedule.Hooks{
		OnLeaderChange: func(l bool) { rec.add("OnLeaderChange", l) },
		OnTick:         func(s schedule.TickStats) { rec.add("OnTick", s) },
	})
	sh.OnLeaderChange(true)
	sh.OnTick(stats)

	want := []call{
		{"OnRefresh", []any{"c", tokens.OutcomeTransient, time.Second}},
		{"OnTokenCall", []any{"c", tokErr, time.Second}},
		{"OnLockAcquired", []any{"c", time.Second}},
		{"OnLockBusy", []any{"c"}},
		{"OnNeedsReauth", []any{"c", tokens.ReasonRevoked, "d"}},
		{"BeforeTokenCall", []any{"c"}},
		{"AfterTokenResponse", []any{"c"}},
		{"OnPageSynced", []any{"c"}},
		{"OnSweep", []any{"c", 2, 1}},
		{"OnCursorAdvanced", []any{"c", cursor}},
		{"OnObjectError", []any{"c", "o", tokErr}},
		{"OnReconcile", []any{"c", jobs.ReconcileCounts{FoundLate: 1}}},
		{"OnRequest", []any{"GET /x", 201, time.Second}},
		{"OnOAuth", []any{control.OAuthDenied}},
		{"OnNotionWebhook", []any{control.WebhookEnqueued}},
		{"OnReauthNotification", []any{"c", control.NotificationDelivered, 1}},
		{"OnLeaderChange", []any{true}},
		{"OnTick", []any{stats}},
	}
	if !reflect.DeepEqual(rec.calls, want) {
		t.Errorf("base hooks saw\n%v\nwant\n%v", rec.calls, want)
	}
}

// TestHooksWithoutBaseLeaveTestHooksUnset: the metrics never install the
// tokens test hooks themselves.
func TestHooksWithoutBaseLeaveTestHooksUnset(t *testing.T) {
	t.Parallel()
	m, _ := newMetrics(t)
	h := m.TokenHooks(tokens.Hooks{})
	if h.BeforeTokenCall != nil || h.AfterTokenResponse != nil {
		t.Error("TokenHooks set BeforeTokenCall or AfterTokenResponse")
	}
}

func TestKnownLabelValuesStartAtZero(t *testing.T) {
	t.Parallel()
	_, reg := newMetrics(t)
	for name, want := range map[string]int{
		"notionsync_refreshes_total":              5,
		"notionsync_needs_reauth_total":           3,
		"notionsync_notion_rate_limited_total":    3,
		"notionsync_notion_backoff_seconds_total": 4,
		"notionsync_oauth_callbacks_total":        10,
		"notionsync_reauth_notifications_total":   3,
	} {
		n, err := testutil.GatherAndCount(reg, name)
		if err != nil {
			t.Fatal(err)
		}
		if n != want {
			t.Errorf("%s has %d series, want %d", name, n, want)
		}
	}
	s := series(t, reg)
	if v, ok := s[`notionsync_needs_reauth_total{reason="revoked"}`]; !ok || v != 0 {
		t.Errorf(`needs_reauth_total{reason="revoked"} = %v (present %v), want 0`, v, ok)
	}
}

func TestMetricsLint(t *testing.T) {
	t.Parallel()
	m, reg := newMetrics(t)
	// Touch the label-only vectors so that they are exposed too.
	m.TokenHooks(tokens.Hooks{}).OnTokenCall("c", nil, time.Second)
	m.NotionObserver().OnRequest("c", "GET", 200, time.Second)
	ch := m.ControlHooks(control.Hooks{})
	ch.OnRequest("GET /healthz", 200, time.Millisecond)
	ch.OnNotionWebhook(control.WebhookEnqueued)
	if n, err := testutil.GatherAndCount(reg); err != nil || n < 50 {
		t.Fatalf("%d series to lint (err %v), want them all", n, err)
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

func TestNewValidatesAndRollsBack(t *testing.T) {
	t.Parallel()
	if _, err := metrics.New(nil); err == nil {
		t.Error("New(nil) succeeded")
	}

	// A registry that already holds one of the names: New fails and leaves
	// nothing of its own registered.
	reg := prometheus.NewRegistry()
	other := prometheus.NewCounter(prometheus.CounterOpts{Name: "notionsync_sweeps_total", Help: "someone else's"})
	reg.MustRegister(other)
	if _, err := metrics.New(reg); err == nil {
		t.Fatal("New on a registry holding one of its names succeeded")
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	if strings.Join(names, ",") != "notionsync_sweeps_total" {
		t.Errorf("after the failed New the registry holds %v", names)
	}

	// A second Metrics on one registry is refused.
	reg = prometheus.NewRegistry()
	if _, err := metrics.New(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := metrics.New(reg); err == nil {
		t.Error("a second New on the same registry succeeded")
	}
}
