package control

import (
	"bytes"
	"cmp"
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/notionsync/notionsync/tokens"
)

// The connections console: server-rendered pages under /admin/ for
// operators, behind the same admin check as the JSON API (a browser sends
// the admin token as the password of HTTP Basic authentication). See
// doc.go for the routes and console_test.go for what each page shows.
//
// A list page never reads every record. Each view reads one index page:
// the all-connections index, a status index (tokens/statusindex.go), or
// the errored index (jobs/errindex.go), then the page's records and sync
// states in one pipelined round trip each. A filter the chosen index does
// not answer (a reason within needs_reauth, the status of an errored
// connection, a workspace name search) is applied to the records read, and
// the scan stops after consoleScanBudget records even when the page is not
// full: the page then says how many it scanned and offers the next part.

// Console sizes.
const (
	consolePageSize = 50
	// consoleScanBudget bounds the records one list view reads when a
	// filter is applied after the index (reason, workspace search, or
	// status together with errors).
	consoleScanBudget = 2000
	consoleBatch      = 250
	// consoleMaxErrors bounds the per-object errors a connection page lists.
	consoleMaxErrors = 200
	maxSearchLen     = 100
)

// ConsolePath is where the console is served.
const ConsolePath = "/admin/"

// SyncSummary is a connection's sync progress as the console shows it.
type SyncSummary struct {
	Cursor, Target, LastSweep, LastSync time.Time
	PagesSynced, Pending                int64
	// Errors are the connection's per-object errors, in no order.
	Errors []ObjectErrorInfo
}

// ObjectErrorInfo is one per-object error.
type ObjectErrorInfo struct {
	ObjectID, Message string
	// Kind is "permanent", "transient", or "" for an error recorded
	// before kinds existed.
	Kind  string
	Since time.Time
}

// TaskRef names a running asynq task of a connection.
type TaskRef struct {
	Kind, Queue, ID string
}

// ConsoleSync is what the console reads from the sync side (package jobs'
// StateReader; internal/app adapts it). Every field is optional: without
// it the console leaves the matching columns empty and hides the filter.
type ConsoleSync struct {
	// States returns the sync progress of each id, in their order, in
	// one round trip.
	States func(ctx context.Context, ids []string) ([]SyncSummary, error)
	// ErroredPage pages by id through the connections that have
	// per-object errors ("" after: the start; "" next: the end).
	ErroredPage func(ctx context.Context, after string, limit int) (ids []string, next string, err error)
	// RunningTasks lists the connection's running tasks.
	RunningTasks func(ctx context.Context, id string) ([]TaskRef, error)
}

//go:embed console/*.tmpl console/static/*
var consoleFS embed.FS

var consoleTemplates = template.Must(template.New("").Funcs(template.FuncMap{
	"ago":   ago,
	"until": until,
	"ts":    timestamp,
}).ParseFS(consoleFS, "console/*.tmpl"))

// consoleCSP allows our own stylesheet and script only: no inline script
// or style, forms post to us, nothing frames the console.
const consoleCSP = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; " +
	"form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

func (s *Server) consoleRoutes(admin func(string, http.HandlerFunc)) {
	admin("GET /admin/{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/admin/connections", http.StatusFound)
	})
	admin("GET /admin/connections", s.handleConsoleList)
	admin("GET /admin/connections/{id}", s.handleConsoleConnection)
	admin("POST /admin/connections/{id}/{action}", s.handleConsoleAction)
	static, _ := fs.Sub(consoleFS, "console/static")
	files := http.StripPrefix("/admin/static/", http.FileServerFS(static))
	admin("GET /admin/static/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}

// Console CSRF tokens are an HMAC of the connection id under a key derived
// from the admin token (HKDF, its own label). Basic authentication has no
// server-side session to bind a random token to, and the control plane
// runs as several stateless replicas; a derived token needs no storage,
// validates on every replica, and cannot be computed without the admin
// token. It is bound to one connection, so a token that leaks (a saved
// page) acts on that connection only, and rotating the admin token
// invalidates every one. The cross-origin check of requireAdmin
// (Sec-Fetch-Site / Origin) runs before it as a second line.
func deriveCSRFKey(adminToken string) []byte {
	k, err := hkdf.Key(sha256.New, []byte(adminToken), nil, "notionsync console csrf v1", 32)
	if err != nil {
		panic(err) // unreachable: 32 bytes is far below HKDF-SHA256's limit
	}
	return k
}

func (s *Server) csrfToken(connID string) string {
	m := hmac.New(sha256.New, s.csrfKey)
	m.Write([]byte("console-action\x00" + connID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (s *Server) validCSRF(connID, presented string) bool {
	got, err := base64.RawURLEncoding.DecodeString(presented)
	if err != nil || presented == "" {
		return false
	}
	want, _ := base64.RawURLEncoding.DecodeString(s.csrfToken(connID))
	return hmac.Equal(got, want)
}

// listFilter is the list page's query.
type listFilter struct {
	Status tokens.Status
	Reason tokens.Reason
	Errors bool
	Query  string
	After  string
}

var consoleReasons = []tokens.Reason{tokens.ReasonRevoked, tokens.ReasonLostRotation, tokens.ReasonNoRefreshToken, tokens.ReasonOperator}

func parseListFilter(q url.Values) (listFilter, string) {
	f := listFilter{
		Status: tokens.Status(q.Get("status")), Reason: tokens.Reason(q.Get("reason")),
		Errors: q.Get("errors") == "1", Query: strings.TrimSpace(q.Get("q")), After: q.Get("after"),
	}
	switch {
	case f.Status != "" && !slices.Contains(tokens.Statuses, f.Status):
		return f, "unknown status"
	case f.Reason != "" && !slices.Contains(consoleReasons, f.Reason):
		return f, "unknown reason"
	case f.Reason != "" && f.Status != "" && f.Status != tokens.StatusNeedsReauth:
		return f, "a reason applies to needs_reauth connections only"
	case len(f.Query) > maxSearchLen:
		return f, fmt.Sprintf("the search is at most %d characters", maxSearchLen)
	case len(f.After) > 300:
		return f, "malformed page cursor"
	}
	return f, ""
}

// encode returns the filter as a query string, with after replaced.
func (f listFilter) encode(after string) string {
	q := url.Values{}
	if f.Status != "" {
		q.Set("status", string(f.Status))
	}
	if f.Reason != "" {
		q.Set("reason", string(f.Reason))
	}
	if f.Errors {
		q.Set("errors", "1")
	}
	if f.Query != "" {
		q.Set("q", f.Query)
	}
	if after != "" {
		q.Set("after", after)
	}
	return q.Encode()
}

// matches applies the filters the index did not.
func (f listFilter) matches(c *tokens.Connection) bool {
	if f.Status != "" && c.Status != f.Status {
		return false
	}
	if f.Reason != "" && (c.Status != tokens.StatusNeedsReauth || c.Reason != f.Reason) {
		return false
	}
	if f.Query != "" {
		q := strings.ToLower(f.Query)
		if !strings.Contains(strings.ToLower(c.Meta[MetaWorkspaceName]), q) &&
			!strings.Contains(strings.ToLower(c.ID), q) {
			return false
		}
	}
	return true
}

// listRow is one row of the list page.
type listRow struct {
	C       *tokens.Connection
	Sync    *SyncSummary
	Name    string
	NextRef time.Time // the next refresh: the retry time after a failure, else the due time
}

// listResult is what one list view read.
type listResult struct {
	Rows []listRow
	// Next is the after value of the next part ("" at the end).
	Next string
	// Scanned counts the records read; Partial says the scan budget ended
	// the view before the page was full.
	Scanned int
	Partial bool
}

// listConnections reads one page of the list for f (see the comment at
// the top of this file for its cost).
func (s *Server) listConnections(ctx context.Context, f listFilter) (listResult, error) {
	var res listResult
	// The index: errored, a status (a reason implies needs_reauth), or all.
	useErrored := f.Errors
	status := f.Status
	if f.Reason != "" {
		status = tokens.StatusNeedsReauth
	}
	// Filters the index answers need no per-record check beyond it.
	post := f
	if !useErrored {
		post.Status = ""
	}
	filtered := post.Status != "" || post.Reason != "" || post.Query != ""
	batch := consolePageSize
	if filtered {
		batch = consoleBatch
	}
	after := f.After
	var tcur tokens.PageCursor
	if !useErrored {
		var err error
		if tcur, err = tokens.ParsePageCursor(after); err != nil {
			return res, errBadCursor
		}
	} else if after != "" && tokens.ValidateID(after) != nil {
		return res, errBadCursor
	}
	for {
		var ids []string
		var more bool
		if useErrored {
			var next string
			var err error
			ids, next, err = s.cfg.Console.ErroredPage(ctx, after, batch)
			if err != nil {
				return res, err
			}
			more = next != ""
		} else {
			var next tokens.PageCursor
			var err error
			ids, next, err = s.store.PageIDs(ctx, status, tcur, batch)
			if err != nil {
				return res, err
			}
			more = next.ID != ""
		}
		conns, _, err := s.store.GetMany(ctx, ids)
		if err != nil {
			return res, err
		}
		for i, c := range conns {
			res.Scanned++
			// The position after this id, whether it matches or not.
			if useErrored {
				after = ids[i]
			} else if c != nil {
				tcur = tokens.PageCursor{CreatedMs: c.CreatedAt.UnixMilli(), ID: c.ID}
			}
			if c == nil || !post.matches(c) {
				continue
			}
			res.Rows = append(res.Rows, listRow{C: c, Name: c.Meta[MetaWorkspaceName], NextRef: nextRefresh(c)})
			if len(res.Rows) == consolePageSize {
				more = more || i < len(conns)-1
				break
			}
		}
		cursor := after
		if !useErrored {
			cursor = tcur.String()
		}
		if !more {
			break
		}
		if len(res.Rows) == consolePageSize {
			res.Next = cursor
			break
		}
		if res.Scanned >= consoleScanBudget {
			res.Next, res.Partial = cursor, true
			break
		}
	}
	if sync := s.cfg.Console.States; sync != nil && len(res.Rows) > 0 {
		ids := make([]string, len(res.Rows))
		for i, r := range res.Rows {
			ids[i] = r.C.ID
		}
		sums, err := sync(ctx, ids)
		if err != nil {
			s.log.Warn("control: console sync states", zap.Error(err))
		} else {
			for i := range res.Rows {
				res.Rows[i].Sync = &sums[i]
			}
		}
	}
	return res, nil
}

var errBadCursor = errors.New("malformed page cursor")

func nextRefresh(c *tokens.Connection) time.Time {
	if c.Status != tokens.StatusActive && c.Status != tokens.StatusPaused {
		return time.Time{}
	}
	if c.RetryAt.After(c.RefreshDue) {
		return c.RetryAt
	}
	return c.RefreshDue
}

type consoleBase struct {
	Title    string
	Asynqmon string // "" when asynqmon is not mounted
	Now      time.Time
}

func (s *Server) consoleBase(title string) consoleBase {
	b := consoleBase{Title: title, Now: s.now()}
	if s.cfg.Asynqmon != nil {
		b.Asynqmon = AsynqmonPath
	}
	return b
}

type listPage struct {
	consoleBase
	F          listFilter
	Statuses   []tokens.Status
	Reasons    []tokens.Reason
	Counts     map[tokens.Status]int64
	Total      int64
	HasErrors  bool // the errored filter is available
	Res        listResult
	NextURL    string
	FirstURL   string
	Error      string
	FilterDesc string
}

func (s *Server) handleConsoleList(w http.ResponseWriter, r *http.Request) {
	f, msg := parseListFilter(r.URL.Query())
	p := listPage{consoleBase: s.consoleBase("Connections"), F: f, Statuses: tokens.Statuses,
		Reasons: consoleReasons, HasErrors: s.cfg.Console.ErroredPage != nil}
	if f.Errors && !p.HasErrors {
		msg = "the errors filter needs the sync state reader"
	}
	if msg != "" {
		p.Error = msg
		s.renderConsole(w, http.StatusBadRequest, "list.tmpl", p)
		return
	}
	counts, err := s.store.CountByStatus(r.Context())
	if err != nil {
		s.consoleFailure(w, r, err)
		return
	}
	p.Counts = counts
	for _, n := range counts {
		p.Total += n
	}
	res, err := s.listConnections(r.Context(), f)
	if errors.Is(err, errBadCursor) {
		p.Error = "malformed page cursor; start again from the first page"
		s.renderConsole(w, http.StatusBadRequest, "list.tmpl", p)
		return
	}
	if err != nil {
		s.consoleFailure(w, r, err)
		return
	}
	p.Res = res
	if res.Next != "" {
		p.NextURL = "/admin/connections?" + f.encode(res.Next)
	}
	if f.After != "" {
		p.FirstURL = "/admin/connections?" + f.encode("")
	}
	s.renderConsole(w, http.StatusOK, "list.tmpl", p)
}

type connPage struct {
	consoleBase
	C         *tokens.Connection
	Name      string
	Sync      *SyncSummary
	Errors    []ObjectErrorInfo
	MoreErrs  int
	Events    []tokens.Event
	Tasks     []TaskRef
	NextRef   time.Time
	CSRF      string
	Flash     *flash
	Link      *ReconnectLink
	CanLink   bool
	HasQueues bool
}

type flash struct {
	OK   bool
	Text string
}

func (s *Server) handleConsoleConnection(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if tokens.ValidateID(id) != nil {
		s.renderConsoleError(w, http.StatusBadRequest, "connection ids are "+tokens.IDRule)
		return
	}
	p, err := s.connectionPage(r.Context(), id)
	if errors.Is(err, tokens.ErrNotFound) {
		s.renderConsoleError(w, http.StatusNotFound, fmt.Sprintf("no connection %q", id))
		return
	}
	if err != nil {
		s.consoleFailure(w, r, err)
		return
	}
	p.Flash = flashFor(r.URL.Query(), p.C)
	s.renderConsole(w, http.StatusOK, "connection.tmpl", p)
}

func (s *Server) connectionPage(ctx context.Context, id string) (connPage, error) {
	c, err := s.store.Get(ctx, id)
	if err != nil {
		return connPage{}, err
	}
	p := connPage{consoleBase: s.consoleBase(cmp.Or(c.Meta[MetaWorkspaceName], c.ID)), C: c,
		Name: c.Meta[MetaWorkspaceName], NextRef: nextRefresh(c), CSRF: s.csrfToken(id),
		CanLink: s.publicURL != "" && c.Meta[MetaWorkspaceID] != "", HasQueues: s.cfg.Asynqmon != nil}
	if p.Events, err = s.store.Events(ctx, id); err != nil {
		return p, err
	}
	if f := s.cfg.Console.States; f != nil {
		sums, err := f(ctx, []string{id})
		if err != nil {
			s.log.Warn("control: console sync state", zap.String("conn_id", id), zap.Error(err))
		} else {
			p.Sync = &sums[0]
			p.Errors = slices.Clone(sums[0].Errors)
			slices.SortFunc(p.Errors, func(a, b ObjectErrorInfo) int {
				return cmp.Or(b.Since.Compare(a.Since), strings.Compare(a.ObjectID, b.ObjectID))
			})
			if len(p.Errors) > consoleMaxErrors {
				p.MoreErrs = len(p.Errors) - consoleMaxErrors
				p.Errors = p.Errors[:consoleMaxErrors]
			}
		}
	}
	if f := s.cfg.Console.RunningTasks; f != nil {
		if p.Tasks, err = f(ctx, id); err != nil {
			s.log.Warn("control: console running tasks", zap.String("conn_id", id), zap.Error(err))
		}
	}
	return p, nil
}

// Console actions and the results their flash names. The flash is built
// from the result code in the redirect and the connection as read back
// when the page renders, so it never claims a state the store does not
// hold.
var consoleActions = map[string]bool{
	"pause": true, "resume": true, "sync": true, "refresh": true, "disconnect": true, "reconnect-link": true,
}

func (s *Server) handleConsoleAction(w http.ResponseWriter, r *http.Request) {
	id, action := r.PathValue("id"), r.PathValue("action")
	if tokens.ValidateID(id) != nil || !consoleActions[action] {
		s.renderConsoleError(w, http.StatusNotFound, "no such action")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	if err := r.ParseForm(); err != nil || !s.validCSRF(id, r.PostForm.Get("csrf")) {
		s.log.Info("control: console action refused: missing or wrong CSRF token",
			zap.String("conn_id", id), zap.String("action", action))
		s.renderConsoleError(w, http.StatusForbidden,
			"the form's CSRF token is missing or wrong; reload the connection page and try again (nothing was changed)")
		return
	}
	ctx := r.Context()
	c, err := s.store.Get(ctx, id)
	if errors.Is(err, tokens.ErrNotFound) {
		s.renderConsoleError(w, http.StatusNotFound, fmt.Sprintf("no connection %q", id))
		return
	}
	if err != nil {
		s.consoleFailure(w, r, err)
		return
	}
	result := "ok"
	switch action {
	case "pause", "resume":
		op, from := s.store.Pause, tokens.StatusActive
		if action == "resume" {
			op, from = s.store.Resume, tokens.StatusPaused
		}
		if c.Status != from {
			result = "wrong_status"
		} else if err := op(ctx, id); err != nil {
			result = "failed"
			if c2, gerr := s.store.Get(ctx, id); gerr == nil && c2.Status != from {
				result = "wrong_status" // it moved meanwhile
			} else {
				s.log.Error("control: console "+action, zap.String("conn_id", id), zap.Error(err))
			}
		}
	case "sync":
		if c.Status != tokens.StatusActive {
			result = "wrong_status"
		} else if err := s.cfg.Enqueuer.SyncNow(ctx, id); err != nil {
			s.log.Error("control: console enqueue sync", zap.String("conn_id", id), zap.Error(err))
			result = "enqueue_failed"
		}
	case "refresh":
		// Forced and synchronous (like notionsyncctl refresh -wait): the
		// page then shows the version the refresh wrote.
		if c.Status != tokens.StatusActive && c.Status != tokens.StatusPaused {
			result = "wrong_status"
			break
		}
		rctx, cancel := context.WithTimeout(ctx, s.cfg.RefreshWaitTimeout)
		_, err := s.cfg.Source.ForceRefresh(rctx, id)
		cancel()
		switch {
		case err == nil:
			s.log.Info("control: connection refreshed by an operator (console)", zap.String("conn_id", id))
		case errors.As(err, new(*tokens.ReauthError)):
			result = "needs_reauth"
		default:
			s.log.Warn("control: console refresh", zap.String("conn_id", id), zap.Error(err))
			result = "failed"
		}
	case "disconnect":
		if c.Status == tokens.StatusDisconnected {
			result = "wrong_status"
			break
		}
		revoked, err := s.cfg.Source.DisconnectAndRevoke(ctx, id, s.cfg.OAuth)
		switch {
		case err != nil:
			s.log.Error("control: console disconnect", zap.String("conn_id", id), zap.Error(err))
			result = "failed"
		case !revoked:
			result = "not_revoked"
		}
		if err == nil {
			s.log.Info("control: connection disconnected (console)", zap.String("conn_id", id), zap.Bool("revoked", revoked))
		}
	case "reconnect-link":
		// The link is a credential: it is shown in this response only,
		// never put in a redirect URL (history, proxies' logs).
		l, err := s.MintReconnectLink(ctx, id, 0)
		if err != nil {
			result = "link_refused"
			if !errors.Is(err, ErrWorkspaceUnknown) {
				s.log.Warn("control: console reconnect link", zap.String("conn_id", id), zap.Error(err))
			}
			break
		}
		s.log.Info("control: reconnect link minted (console)", zap.String("conn_id", id), zap.Time("expires_at", l.ExpiresAt))
		p, err := s.connectionPage(ctx, id)
		if err != nil {
			s.consoleFailure(w, r, err)
			return
		}
		p.Link = &l
		p.Flash = &flash{OK: true, Text: "Reconnect link minted; it works once, until " + timestamp(l.ExpiresAt) + "."}
		s.renderConsole(w, http.StatusOK, "connection.tmpl", p)
		return
	}
	q := url.Values{"done": {action}, "result": {result}}
	http.Redirect(w, r, "/admin/connections/"+id+"?"+q.Encode(), http.StatusSeeOther)
}

// flashFor names the outcome of the action in q, with the status read back.
func flashFor(q url.Values, c *tokens.Connection) *flash {
	action, result := q.Get("done"), q.Get("result")
	if !consoleActions[action] || result == "" {
		return nil
	}
	now := fmt.Sprintf("The connection is now %s.", c.Status)
	switch result {
	case "ok":
		switch action {
		case "pause":
			return &flash{c.Status == tokens.StatusPaused, "Paused. " + now}
		case "resume":
			return &flash{c.Status == tokens.StatusActive, "Resumed. " + now}
		case "sync":
			return &flash{true, "Sync enqueued: a sweep of this connection is queued. " + now}
		case "refresh":
			return &flash{true, fmt.Sprintf("Refreshed: the token is at version %d. %s", c.Version, now)}
		case "disconnect":
			return &flash{c.Status == tokens.StatusDisconnected, "Disconnected; the grant was revoked at Notion. " + now}
		}
	case "wrong_status":
		return &flash{false, fmt.Sprintf("Not done: %s is not possible while the connection is %s.", action, c.Status)}
	case "enqueue_failed":
		return &flash{false, "Not done: the sync could not be enqueued (queue unavailable); try again. " + now}
	case "needs_reauth":
		return &flash{false, "Refresh failed: Notion refused the grant. " + now}
	case "not_revoked":
		return &flash{c.Status == tokens.StatusDisconnected, "Disconnected; revoking the grant at Notion failed (the secrets are deleted anyway). " + now}
	case "link_refused":
		return &flash{false, "No reconnect link: the connection's Notion workspace is not known yet (see the runbook)."}
	case "failed":
		return &flash{false, fmt.Sprintf("%s failed; see the scheduler's log. %s", action, now)}
	}
	return nil
}

type errorPage struct {
	consoleBase
	Message string
}

func (s *Server) renderConsoleError(w http.ResponseWriter, status int, msg string) {
	s.renderConsole(w, status, "error.tmpl", errorPage{consoleBase: s.consoleBase(http.StatusText(status)), Message: msg})
}

func (s *Server) consoleFailure(w http.ResponseWriter, r *http.Request, err error) {
	s.log.Error("control: console request failed", zap.String("route", r.Pattern), zap.Error(err))
	s.renderConsoleError(w, http.StatusInternalServerError, "internal error; see the scheduler's log")
}

func (s *Server) renderConsole(w http.ResponseWriter, status int, name string, data any) {
	var buf bytes.Buffer
	if err := consoleTemplates.ExecuteTemplate(&buf, name, data); err != nil {
		s.log.Error("control: render console page", zap.String("template", name), zap.Error(err))
		writeText(w, http.StatusInternalServerError, "internal error\n")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", consoleCSP)
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// timestamp formats t for the console ("" for zero), in UTC.
func timestamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// ago says how long before now t was ("" for zero).
func ago(now, t time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := now.Sub(t)
	if d < 0 {
		return "in " + roundDuration(-d)
	}
	return roundDuration(d) + " ago"
}

// until says how long after now t is ("" for zero).
func until(now, t time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := t.Sub(now)
	if d < 0 {
		return roundDuration(-d) + " ago"
	}
	return "in " + roundDuration(d)
}

// roundDuration rounds to the nearest unit that reads well (89s is "1m29s",
// not "1m").
func roundDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return d.Round(time.Second).String()
	case d < time.Hour:
		return strings.TrimSuffix(d.Round(time.Second).String(), "0s")
	case d < 48*time.Hour:
		return strings.TrimSuffix(d.Round(time.Minute).String(), "0s")
	default:
		return fmt.Sprintf("%dd", int(d.Round(24*time.Hour)/(24*time.Hour)))
	}
}
