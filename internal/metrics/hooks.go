package metrics

import (
	"errors"
	"time"

	"github.com/notionsync/notionsync/internal/control"
	"github.com/notionsync/notionsync/internal/schedule"
	"github.com/notionsync/notionsync/jobs"
	"github.com/notionsync/notionsync/sync/notionclient"
	"github.com/notionsync/notionsync/tokens"
)

// TokenHooks returns hooks for tokens.Config.Hooks that record refreshes,
// needs_reauth transitions, lock waits and token-endpoint calls, then call
// the matching function of base (if set). BeforeTokenCall and
// AfterTokenResponse are base's, unchanged.
//
// Connection ids and error texts are not recorded: a token-endpoint error is
// reduced to its tokens.ErrorKind.
func (m *Metrics) TokenHooks(base tokens.Hooks) tokens.Hooks {
	h := base
	h.OnRefresh = func(connID string, outcome tokens.Outcome, took time.Duration) {
		m.refreshes.WithLabelValues(enumLabel(string(outcome))).Inc()
		m.refreshSeconds.Observe(took.Seconds())
		if base.OnRefresh != nil {
			base.OnRefresh(connID, outcome, took)
		}
	}
	h.OnTokenCall = func(connID string, err error, took time.Duration) {
		m.tokenEndpoint.WithLabelValues(tokenCallResult(err)).Observe(took.Seconds())
		if base.OnTokenCall != nil {
			base.OnTokenCall(connID, err, took)
		}
	}
	h.OnLockAcquired = func(connID string, waited time.Duration) {
		m.lockWait.Observe(waited.Seconds())
		if base.OnLockAcquired != nil {
			base.OnLockAcquired(connID, waited)
		}
	}
	h.OnLockBusy = func(connID string) {
		m.lockBusy.Inc()
		if base.OnLockBusy != nil {
			base.OnLockBusy(connID)
		}
	}
	h.OnNeedsReauth = func(connID string, reason tokens.Reason, detail string) {
		m.needsReauth.WithLabelValues(enumLabel(string(reason))).Inc()
		if base.OnNeedsReauth != nil {
			base.OnNeedsReauth(connID, reason, detail)
		}
	}
	return h
}

// tokenCallResult is the result label of a token-endpoint call: "success",
// or the failure's tokens.ErrorKind (an error that is not a
// *tokens.ProviderError counts as outcome_unknown, as tokens treats it).
func tokenCallResult(err error) string {
	if err == nil {
		return "success"
	}
	var pe *tokens.ProviderError
	if errors.As(err, &pe) {
		return enumLabel(pe.Kind.String())
	}
	return tokens.KindOutcomeUnknown.String()
}

// NotionObserver returns an observer for notionclient.Config that records
// every exchange with Notion, its status and latency, rate limiting and
// in-process backoff. Connection ids are not recorded.
func (m *Metrics) NotionObserver() notionclient.Observer {
	return notionObserver{m}
}

type notionObserver struct{ m *Metrics }

func (o notionObserver) OnRequest(_, method string, status int, d time.Duration) {
	o.m.notionRequests.WithLabelValues(methodLabel(method), statusLabel(status)).Inc()
	o.m.notionSeconds.Observe(d.Seconds())
}

func (o notionObserver) OnRateLimited(_ string, _ time.Duration, reason string) {
	o.m.notionLimited.WithLabelValues(enumLabel(reason)).Inc()
}

func (o notionObserver) OnBackoffWait(_, reason string, d time.Duration) {
	if d > 0 {
		o.m.notionBackoff.WithLabelValues(enumLabel(reason)).Add(d.Seconds())
	}
}

// JobHooks returns hooks for jobs.Config.Hooks that count synced pages,
// sweeps, cursor moves, per-object errors and reconciliation passes, then call the matching
// function of base (if set).
func (m *Metrics) JobHooks(base jobs.Hooks) jobs.Hooks {
	h := base
	h.OnPageSynced = func(connID string) {
		m.pagesSynced.Inc()
		if base.OnPageSynced != nil {
			base.OnPageSynced(connID)
		}
	}
	h.OnSweep = func(connID string, discovered, enqueued int) {
		m.sweeps.Inc()
		m.sweepDiscovered.Add(float64(max(discovered, 0)))
		m.sweepEnqueued.Add(float64(max(enqueued, 0)))
		if base.OnSweep != nil {
			base.OnSweep(connID, discovered, enqueued)
		}
	}
	h.OnCursorAdvanced = func(connID string, cursor time.Time) {
		m.cursorAdvances.Inc()
		if base.OnCursorAdvanced != nil {
			base.OnCursorAdvanced(connID, cursor)
		}
	}
	h.OnObjectError = func(connID, objectID string, err error) {
		m.objectsErrored.Inc()
		if base.OnObjectError != nil {
			base.OnObjectError(connID, objectID, err)
		}
	}
	h.OnReconcile = func(connID string, c jobs.ReconcileCounts) {
		m.reconciles.Inc()
		m.reconObjects.WithLabelValues("found_late").Add(float64(max(c.FoundLate, 0)))
		m.reconObjects.WithLabelValues("confirmed_gone").Add(float64(max(c.ConfirmedGone, 0)))
		m.reconObjects.WithLabelValues("unreachable").Add(float64(max(c.Unreachable, 0)))
		m.reconObjects.WithLabelValues("retried").Add(float64(max(c.Retried, 0)))
		if base.OnReconcile != nil {
			base.OnReconcile(connID, c)
		}
	}
	return h
}

// ControlHooks returns hooks for control.Config.Hooks that record
// control-plane requests by route pattern, OAuth callbacks, Notion webhooks
// and needs_reauth notifications, then call the matching function of base
// (if set).
func (m *Metrics) ControlHooks(base control.Hooks) control.Hooks {
	h := base
	h.OnRequest = func(route string, status int, took time.Duration) {
		r := routeLabel(route)
		m.controlRequests.WithLabelValues(r, statusLabel(status)).Inc()
		m.controlSeconds.WithLabelValues(r).Observe(took.Seconds())
		if base.OnRequest != nil {
			base.OnRequest(route, status, took)
		}
	}
	h.OnOAuth = func(outcome control.OAuthOutcome) {
		m.oauthCallbacks.WithLabelValues(enumLabel(string(outcome))).Inc()
		if base.OnOAuth != nil {
			base.OnOAuth(outcome)
		}
	}
	h.OnNotionWebhook = func(outcome control.WebhookOutcome) {
		m.notionWebhooks.WithLabelValues(enumLabel(string(outcome))).Inc()
		if base.OnNotionWebhook != nil {
			base.OnNotionWebhook(outcome)
		}
	}
	h.OnReauthNotification = func(connID string, outcome control.NotificationOutcome, attempts int) {
		o := enumLabel(string(outcome))
		m.reauthNotified.WithLabelValues(o).Inc()
		m.reauthAttempts.WithLabelValues(o).Add(float64(max(attempts, 0)))
		if base.OnReauthNotification != nil {
			base.OnReauthNotification(connID, outcome, attempts)
		}
	}
	return h
}

// ScheduleHooks returns hooks for schedule.Config.Hooks that track the
// leader lease and what each tick did, then call the matching function of
// base (if set).
func (m *Metrics) ScheduleHooks(base schedule.Hooks) schedule.Hooks {
	h := base
	h.OnLeaderChange = func(isLeader bool) {
		if isLeader {
			m.leader.Set(1)
		} else {
			m.leader.Set(0)
		}
		m.leaderChanges.Inc()
		if base.OnLeaderChange != nil {
			base.OnLeaderChange(isLeader)
		}
	}
	h.OnTick = func(st schedule.TickStats) {
		m.ticks.Inc()
		m.tickSeconds.Observe(st.Took.Seconds())
		m.refreshDue.Add(float64(max(st.RefreshDue, 0)))
		m.refreshEnqueued.Add(float64(max(st.RefreshEnqueued, 0)))
		m.sweepsDue.Add(float64(max(st.SweepsDue, 0)))
		m.sweepsEnqueued.Add(float64(max(st.SweepsEnqueued, 0)))
		m.scheduleSkipped.Add(float64(max(st.Skipped, 0)))
		m.discovered.Add(float64(max(st.Discovered, 0)))
		m.reaped.Add(float64(max(st.Reaped, 0)))
		m.tickConnErrors.Add(float64(max(st.Errors, 0)))
		if base.OnTick != nil {
			base.OnTick(st)
		}
	}
	return h
}
