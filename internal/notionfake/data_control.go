package notionfake

import (
	"fmt"
	"maps"
	"net/http"
	"time"
)

// This file is the test control of the data API: injected faults, latency,
// the emulated rate limit and the counters. Every method is safe for
// concurrent use, also while requests are served.

// Rate-limit reasons of 429 answers (additional_data.rate_limit_reason).
const (
	// RateLimitReasonConnection is the per-connection budget; retry after
	// Retry-After.
	RateLimitReasonConnection = "connection"
	// RateLimitReasonBlocked means Notion blocked the integration's requests;
	// clients must not retry.
	RateLimitReasonBlocked = "public_api_request_blocked"
)

type dataFaultKind int

const (
	dataFaultNone dataFaultKind = iota
	dataFaultStatus
	dataFaultRateLimit
	dataFaultUnauthorized
	dataFaultMalformed
	dataFaultHTML
)

// dataFault answers one data request instead of its handler.
type dataFault struct {
	kind       dataFaultKind
	status     int
	retryAfter time.Duration
	reason     string
	// code and message, when set, replace the defaults of a status fault.
	code, message string
}

func (f dataFault) apiError() *apiError {
	switch f.kind {
	case dataFaultStatus:
		code := codeForStatus(f.status)
		if f.status == http.StatusConflict {
			code = "conflict_error"
		}
		if f.code != "" {
			return &apiError{status: f.status, code: f.code, message: f.message}
		}
		return &apiError{status: f.status, code: code, message: "Injected failure."}
	case dataFaultRateLimit:
		return rateLimited(retryAfterSeconds(f.retryAfter), f.reason)
	case dataFaultUnauthorized:
		return &apiError{status: http.StatusUnauthorized, code: "unauthorized", message: "API token is invalid."}
	}
	return nil // malformed and HTML answers are written by dataHandler
}

func rateLimited(secs int64, reason string) *apiError {
	msg := "You have been rate limited. Please try again in a few minutes."
	if reason == RateLimitReasonBlocked {
		msg = "Requests from this integration have been blocked."
	}
	return &apiError{status: http.StatusTooManyRequests, code: "rate_limited", message: msg,
		additional: map[string]any{"retry_after": secs, "rate_limit_reason": reason}}
}

// retryAfterSeconds rounds d up to whole seconds, as Retry-After carries them.
func retryAfterSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

func (st *dataState) takeFault() dataFault {
	if len(st.faults) == 0 {
		return dataFault{}
	}
	f := st.faults[0]
	st.faults = st.faults[1:]
	return f
}

func (s *Server) queueDataFault(n int, f dataFault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.dataLocked()
	for range n {
		st.faults = append(st.faults, f)
	}
}

// FailDataNext makes the next n data requests (that pass authentication and
// the emulated rate limit) answer status with Notion's error body: 409
// conflict_error, 500 internal_server_error, 502 bad_gateway, 503
// service_unavailable, 504 gateway_timeout, 529 service_overload (other
// 4xx: invalid_request). Nothing is read or changed. All data faults are
// served in the order they were queued, one per request. It panics on a
// status outside 400..599, a programming error in the test.
func (s *Server) FailDataNext(n int, status int) {
	if status < 400 || status > 599 {
		panic(fmt.Sprintf("notionfake: FailDataNext status %d outside 400..599", status))
	}
	s.queueDataFault(n, dataFault{kind: dataFaultStatus, status: status})
}

// RateLimitDataNext makes the next n data requests answer 429 rate_limited
// with Retry-After (retryAfter rounded up to whole seconds) and
// additional_data {retry_after, rate_limit_reason: reason}; "" means
// RateLimitReasonConnection. Use RateLimitReasonBlocked for a block that
// must not be retried.
func (s *Server) RateLimitDataNext(n int, retryAfter time.Duration, reason string) {
	if reason == "" {
		reason = RateLimitReasonConnection
	}
	s.queueDataFault(n, dataFault{kind: dataFaultRateLimit, retryAfter: retryAfter, reason: reason})
}

// UnauthorizedNext makes the next n data requests answer 401 unauthorized
// although their token is valid (the token stays valid).
func (s *Server) UnauthorizedNext(n int) {
	s.queueDataFault(n, dataFault{kind: dataFaultUnauthorized})
}

// MalformedNext makes the next n data requests answer 200 with the first
// half of the JSON body they would have had: a truncated document.
func (s *Server) MalformedNext(n int) {
	s.queueDataFault(n, dataFault{kind: dataFaultMalformed})
}

// HTMLErrorNext makes the next n data requests answer like Cloudflare's WAF:
// 403 with a text/html body and no x-notion-request-id.
func (s *Server) HTMLErrorNext(n int) {
	s.queueDataFault(n, dataFault{kind: dataFaultHTML})
}

// PendingDataFaults returns how many queued data faults are not yet served.
func (s *Server) PendingDataFaults() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.dataLocked().faults)
}

// SetDataLatency delays every later data request by d before it is
// authenticated or served (so the data it returns is read after the delay).
// A client that gives up ends the wait; Close drops waiting requests. Zero
// removes the latency.
func (s *Server) SetDataLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dataLocked().latency = d
}

// dataDelay waits out the data latency; false means the fake was closed.
func (s *Server) dataDelay(r *http.Request) bool {
	s.mu.Lock()
	d := s.dataLocked().latency
	s.mu.Unlock()
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return true
	case <-s.closed:
		return false
	}
}

// rateWindow is a connection's fixed one-minute window.
type rateWindow struct {
	start time.Time
	count int
}

// SetRateLimit emulates Notion's per-connection rate limit: each connection
// (one authorization of a workspace) may make perMinute data requests per
// 60 s window, the window starting at its first request (so the budget can
// be spent in a burst); beyond it requests answer 429 rate_limited with
// Retry-After (whole seconds until the window ends, at least 1) and
// additional_data {retry_after, rate_limit_reason: "connection"}. Answered
// 429s do not spend budget. Time is the fake's clock (Options.Now).
// Zero (the default) turns it off; every call starts fresh windows.
// Notion's own budget is 180 per minute (600 on Business/Enterprise).
func (s *Server) SetRateLimit(perMinute int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.dataLocked()
	st.rateLimit = max(perMinute, 0)
	clear(st.windows)
}

// rateLimitLocked spends one request of the token's connection budget, or
// returns the 429 answer. The caller holds s.mu.
func (s *Server) rateLimitLocked(token string, now time.Time) *apiError {
	st := s.dataLocked()
	if st.rateLimit == 0 {
		return nil
	}
	at, ok := s.access[token]
	if !ok {
		return nil
	}
	w := st.windows[at.conn]
	if w == nil || !now.Before(w.start.Add(time.Minute)) {
		w = &rateWindow{start: now}
		st.windows[at.conn] = w
	}
	if w.count >= st.rateLimit {
		secs := max(retryAfterSeconds(w.start.Add(time.Minute).Sub(now)), 1)
		return rateLimited(secs, RateLimitReasonConnection)
	}
	w.count++
	return nil
}

// DataStats counts data-API requests. A snapshot (DataStats()) does not
// change afterwards.
type DataStats struct {
	// Requests counts every data request by endpoint kind and by the status
	// answered (a MalformedNext answer is 200, an HTMLErrorNext one 403),
	// including requests that failed authentication.
	Requests map[EndpointKind]map[int]int
	// Workspaces counts authenticated data requests per workspace id.
	Workspaces map[string]int
	// InjectedFaults counts requests answered by a queued fault.
	InjectedFaults int
	// PoisonedAnswers counts requests answered by a poisoned object
	// (Poison); PoisonedObjects counts them per object.
	PoisonedAnswers int
	// InvalidCursors counts requests refused for their start_cursor: unknown
	// or malformed cursors and InvalidCursorNext answers;
	// InjectedInvalidCursors counts the latter alone.
	InvalidCursors         int
	InjectedInvalidCursors int
	// ExpiredCursors counts requests refused because their cursor expired
	// (Imperfections.CursorExpiry); InvalidCursors counts them too.
	ExpiredCursors int
	// RateLimited counts 429s of the emulated rate limit (SetRateLimit).
	RateLimited int
}

func newDataStats() DataStats {
	return DataStats{Requests: make(map[EndpointKind]map[int]int), Workspaces: make(map[string]int)}
}

func (d *DataStats) record(kind EndpointKind, wsID string, status int) {
	m := d.Requests[kind]
	if m == nil {
		m = make(map[int]int)
		d.Requests[kind] = m
	}
	m[status]++
	if wsID != "" {
		d.Workspaces[wsID]++
	}
}

// Count returns the requests of kind answered status; status 0 counts all
// statuses; kind "" counts all kinds.
func (d DataStats) Count(kind EndpointKind, status int) int {
	n := 0
	for k, byStatus := range d.Requests {
		if kind != "" && k != kind {
			continue
		}
		for st, c := range byStatus {
			if status == 0 || st == status {
				n += c
			}
		}
	}
	return n
}

// Total returns the number of data requests.
func (d DataStats) Total() int { return d.Count("", 0) }

// DataStats returns a snapshot of the data-API counters.
func (s *Server) DataStats() DataStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.dataLocked().stats
	out := cur
	out.Requests = make(map[EndpointKind]map[int]int, len(cur.Requests))
	for k, v := range cur.Requests {
		out.Requests[k] = maps.Clone(v)
	}
	out.Workspaces = maps.Clone(cur.Workspaces)
	return out
}

// RequestCount returns the number of authenticated data requests made for
// workspaceID, whatever they were answered.
func (s *Server) RequestCount(workspaceID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dataLocked().stats.Workspaces[workspaceID]
}
