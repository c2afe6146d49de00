package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/notionsync/notionsync/tokens"
)

// List limits of GET /api/v1/connections.
const (
	defaultListLimit = 100
	maxListLimit     = 1000
)

// Import body limits.
const (
	maxImportBody     = 64 << 10
	maxMetaEntries    = 32
	maxMetaKeyLen     = 64
	maxMetaValueLen   = 1024
	maxTokenLen       = 4096
	maxImportLifetime = 366 * 24 * time.Hour
)

// ConnectionView is a connection as the JSON API shows it. It never holds a
// secret. Zero times are omitted.
type ConnectionView struct {
	ID              string            `json:"id"`
	Status          tokens.Status     `json:"status"`
	Reason          tokens.Reason     `json:"reason,omitempty"`
	Detail          string            `json:"detail,omitempty"`
	Version         int64             `json:"version"`
	AccessExpiresAt time.Time         `json:"access_expires_at,omitzero"`
	RefreshDueAt    time.Time         `json:"refresh_due_at,omitzero"`
	Failures        int               `json:"failures"`
	RetryAt         time.Time         `json:"retry_at,omitzero"`
	CreatedAt       time.Time         `json:"created_at,omitzero"`
	UpdatedAt       time.Time         `json:"updated_at,omitzero"`
	RefreshedAt     time.Time         `json:"refreshed_at,omitzero"`
	KeyID           string            `json:"key_id,omitempty"`
	HasRefreshToken bool              `json:"has_refresh_token"`
	Meta            map[string]string `json:"meta,omitempty"`
	// ReconnectURL is the link that re-authorizes the connection (set when
	// it needs re-authorization or was disconnected).
	ReconnectURL string `json:"reconnect_url,omitempty"`
	// Sync is what Config.SyncInfo returned.
	Sync any `json:"sync,omitempty"`
}

// ConnectionList is the body of GET /api/v1/connections.
type ConnectionList struct {
	Connections []ConnectionView `json:"connections"`
	// Next is the "after" value of the next page; "" on the last page.
	Next string `json:"next,omitempty"`
}

// ImportRequest is the body of POST /api/v1/connections/import.
type ImportRequest struct {
	ConnectionID string `json:"connection_id"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	// ExpiresIn is the access token's remaining lifetime in seconds;
	// 0 or absent assumes the configured access-token lifetime.
	ExpiresIn int64             `json:"expires_in,omitempty"`
	Meta      map[string]string `json:"meta,omitempty"`
}

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC()
}

func (s *Server) view(ctx context.Context, c *tokens.Connection) ConnectionView {
	v := s.viewNoSync(ctx, c)
	if f := s.cfg.SyncInfo; f != nil {
		info, err := f(ctx, c.ID)
		if err != nil {
			s.log.Warn("control: sync info", zap.String("conn_id", c.ID), zap.Error(err))
		} else {
			v.Sync = info
		}
	}
	return v
}

// viewNoSync is view without the sync field.
func (s *Server) viewNoSync(ctx context.Context, c *tokens.Connection) ConnectionView {
	v := ConnectionView{
		ID: c.ID, Status: c.Status, Reason: c.Reason, Detail: c.Detail, Version: c.Version,
		AccessExpiresAt: utc(c.AccessExpiry), RefreshDueAt: utc(c.RefreshDue), Failures: c.Failures,
		RetryAt: utc(c.RetryAt), CreatedAt: utc(c.CreatedAt), UpdatedAt: utc(c.UpdatedAt),
		RefreshedAt: utc(c.RefreshedAt), KeyID: c.KeyID, HasRefreshToken: c.HasRefreshToken, Meta: c.Meta,
	}
	if (c.Status == tokens.StatusNeedsReauth || c.Status == tokens.StatusDisconnected) && s.publicURL != "" &&
		c.Meta[MetaWorkspaceID] != "" {
		// Only admins see views; a link of the default lifetime.
		if l, err := s.MintReconnectLink(ctx, c.ID, 0); err == nil {
			v.ReconnectURL = l.URL
		} else {
			s.log.Warn("control: mint a reconnect link", zap.String("conn_id", c.ID), zap.Error(err))
		}
	}
	return v
}

// views returns the views of a page of connections, their sync fields read
// with one SyncInfos call when it is set (else SyncInfo per connection).
func (s *Server) views(ctx context.Context, conns []*tokens.Connection) []ConnectionView {
	out := make([]ConnectionView, 0, len(conns))
	f := s.cfg.SyncInfos
	if f == nil {
		for _, c := range conns {
			out = append(out, s.view(ctx, c))
		}
		return out
	}
	ids := make([]string, len(conns))
	for i, c := range conns {
		ids[i] = c.ID
		out = append(out, s.viewNoSync(ctx, c))
	}
	if len(ids) == 0 {
		return out
	}
	infos, err := f(ctx, ids)
	switch {
	case err != nil:
		s.log.Warn("control: sync info", zap.Int("connections", len(ids)), zap.Error(err))
	case len(infos) != len(ids):
		s.log.Warn("control: sync info", zap.Int("connections", len(ids)), zap.Int("answers", len(infos)))
	default:
		for i := range out {
			out[i].Sync = infos[i]
		}
	}
	return out
}

// handleReconnectLink mints a reconnect link: POST
// /api/v1/connections/{id}/reconnect-link[?ttl=72h] answers {connection_id,
// url, expires_at}. The link is a credential for that one connection: it
// is never logged.
func (s *Server) handleReconnectLink(w http.ResponseWriter, r *http.Request) {
	id := pathID(w, r)
	if id == "" {
		return
	}
	var ttl time.Duration
	if v := r.URL.Query().Get("ttl"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > MaxLinkTTL {
			writeJSONError(w, http.StatusBadRequest, "invalid_ttl",
				fmt.Sprintf("ttl must be a duration (like 72h) more than 0 and at most %s", MaxLinkTTL))
			return
		}
		ttl = d
	}
	if s.publicURL == "" {
		writeJSONError(w, http.StatusConflict, "no_public_url", "reconnect links need the control server's public URL to be configured")
		return
	}
	l, err := s.MintReconnectLink(r.Context(), id, ttl)
	if errors.Is(err, ErrWorkspaceUnknown) {
		writeJSONError(w, http.StatusConflict, "workspace_unknown", fmt.Sprintf("connection %q does not know its Notion "+
			"workspace (it was imported without meta workspace_id), so a reconnect could not be bound to it and is refused. "+
			"It learns the workspace on its next successful token refresh (POST /api/v1/connections/%s/refresh?wait=1 while "+
			"its refresh token still works), or import it again with meta workspace_id", id, id))
		return
	}
	if err != nil {
		s.writeError(w, r, id, err)
		return
	}
	s.log.Info("control: reconnect link minted", zap.String("conn_id", id), zap.Time("expires_at", l.ExpiresAt))
	writeJSON(w, http.StatusCreated, l)
}

// writeError answers err from the token store or source as JSON.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, connID string, err error) {
	var re *tokens.ReauthError
	var te *tokens.TransientError
	switch {
	case errors.Is(err, tokens.ErrNotFound):
		writeJSONError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no connection %q", connID))
	case errors.As(err, &re):
		writeJSONError(w, http.StatusConflict, "needs_reauth",
			fmt.Sprintf("connection %q needs re-authorization (%s)", connID, re.Reason))
	case errors.Is(err, tokens.ErrPaused):
		writeJSONError(w, http.StatusConflict, "paused", fmt.Sprintf("connection %q is paused", connID))
	case errors.Is(err, tokens.ErrDisconnected):
		writeJSONError(w, http.StatusConflict, "disconnected", fmt.Sprintf("connection %q is disconnected", connID))
	case errors.Is(err, tokens.ErrClientRejected):
		writeJSONError(w, http.StatusBadGateway, "client_rejected",
			"Notion rejected the integration's client credentials; check the client id and secret")
	case errors.As(err, &te):
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int(te.RetryAfter.Round(time.Second)/time.Second))))
		writeJSONError(w, http.StatusServiceUnavailable, "temporarily_unavailable",
			fmt.Sprintf("connection %q: temporary failure, retry later", connID))
	default:
		s.log.Error("control: api request failed", zap.String("route", r.Pattern), zap.String("conn_id", connID), zap.Error(err))
		writeJSONError(w, http.StatusInternalServerError, "internal", "internal error")
	}
}

// pathID returns the {id} path value, or answers 400 and "".
func pathID(w http.ResponseWriter, r *http.Request) string {
	id := r.PathValue("id")
	if err := tokens.ValidateID(id); err != nil {
		writeJSONError(w, http.StatusBadRequest, "invalid_id",
			"connection ids are "+tokens.IDRule)
		return ""
	}
	return id
}

func (s *Server) handleAPINotFound(w http.ResponseWriter, _ *http.Request) {
	writeJSONError(w, http.StatusNotFound, "no_route", "no such endpoint or method")
}

func (s *Server) handleList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	after := q.Get("after")
	if after != "" && tokens.ValidateID(after) != nil {
		writeJSONError(w, http.StatusBadRequest, "invalid_after", "after must be a connection id")
		return
	}
	limit := defaultListLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxListLimit {
			writeJSONError(w, http.StatusBadRequest, "invalid_limit", fmt.Sprintf("limit must be an integer from 1 to %d", maxListLimit))
			return
		}
		limit = n
	}
	conns, next, err := s.store.List(r.Context(), after, limit)
	if err != nil {
		s.writeError(w, r, "", err)
		return
	}
	writeJSON(w, http.StatusOK, ConnectionList{Connections: s.views(r.Context(), conns), Next: next})
}

func (s *Server) handleGet(w http.ResponseWriter, r *http.Request) {
	id := pathID(w, r)
	if id == "" {
		return
	}
	c, err := s.store.Get(r.Context(), id)
	if err != nil {
		s.writeError(w, r, id, err)
		return
	}
	writeJSON(w, http.StatusOK, s.view(r.Context(), c))
}

func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	id := pathID(w, r)
	if id == "" {
		return
	}
	if _, err := s.store.Get(r.Context(), id); err != nil {
		s.writeError(w, r, id, err)
		return
	}
	events, err := s.store.Events(r.Context(), id)
	if err != nil {
		s.writeError(w, r, id, err)
		return
	}
	for i := range events {
		events[i].Time = events[i].Time.UTC()
	}
	writeJSON(w, http.StatusOK, map[string]any{"connection_id": id, "events": events})
}

// checkStatus loads the connection and answers 404 or 409 unless its status
// is one of allowed.
func (s *Server) checkStatus(w http.ResponseWriter, r *http.Request, id, action string, allowed ...tokens.Status) (*tokens.Connection, bool) {
	c, err := s.store.Get(r.Context(), id)
	if err != nil {
		s.writeError(w, r, id, err)
		return nil, false
	}
	if !slices.Contains(allowed, c.Status) {
		writeJSONError(w, http.StatusConflict, "wrong_status",
			fmt.Sprintf("connection %q is %s; %s needs it to be %s", id, c.Status, action, joinStatuses(allowed)))
		return c, false
	}
	return c, true
}

func joinStatuses(ss []tokens.Status) string {
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = string(s)
	}
	return strings.Join(parts, " or ")
}

// transition runs a status change that tokens refuses in the wrong status.
// The status is checked first for a clear answer; if the change still fails
// (the status moved in between), the connection is re-read to tell a 409
// from a failure.
func (s *Server) transition(w http.ResponseWriter, r *http.Request, action string, from tokens.Status,
	op func(context.Context, string) error) {
	id := pathID(w, r)
	if id == "" {
		return
	}
	if _, ok := s.checkStatus(w, r, id, action, from); !ok {
		return
	}
	if err := op(r.Context(), id); err != nil {
		if errors.Is(err, tokens.ErrNotFound) {
			s.writeError(w, r, id, err)
			return
		}
		if _, ok := s.checkStatus(w, r, id, action, from); !ok {
			return
		}
		s.writeError(w, r, id, err)
		return
	}
	s.log.Info("control: connection "+action, zap.String("conn_id", id))
	s.writeConnection(w, r, id, http.StatusOK)
}

func (s *Server) writeConnection(w http.ResponseWriter, r *http.Request, id string, status int) {
	c, err := s.store.Get(r.Context(), id)
	if err != nil {
		s.writeError(w, r, id, err)
		return
	}
	writeJSON(w, status, s.view(r.Context(), c))
}

func (s *Server) handlePause(w http.ResponseWriter, r *http.Request) {
	s.transition(w, r, "pause", tokens.StatusActive, s.store.Pause)
}

func (s *Server) handleResume(w http.ResponseWriter, r *http.Request) {
	s.transition(w, r, "resume", tokens.StatusPaused, s.store.Resume)
}

func (s *Server) handleSync(w http.ResponseWriter, r *http.Request) {
	id := pathID(w, r)
	if id == "" {
		return
	}
	if _, ok := s.checkStatus(w, r, id, "sync", tokens.StatusActive); !ok {
		return
	}
	if err := s.cfg.Enqueuer.SyncNow(r.Context(), id); err != nil {
		s.log.Error("control: enqueue sync", zap.String("conn_id", id), zap.Error(err))
		writeJSONError(w, http.StatusServiceUnavailable, "enqueue_failed", "the sync could not be enqueued; try again")
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"connection_id": id, "status": "enqueued"})
}

// handleReconcile enqueues a reconciliation pass of an active connection
// now (Reconciler). An operator uses it after a bulk share, unshare or
// restore in Notion, instead of waiting for the daily pass.
func (s *Server) handleReconcile(w http.ResponseWriter, r *http.Request) {
	id := pathID(w, r)
	if id == "" {
		return
	}
	rec, ok := s.cfg.Enqueuer.(Reconciler)
	if !ok {
		writeJSONError(w, http.StatusNotImplemented, "not_supported", "this deployment cannot start a reconciliation")
		return
	}
	if _, ok := s.checkStatus(w, r, id, "reconcile", tokens.StatusActive); !ok {
		return
	}
	if err := rec.ReconcileNow(r.Context(), id); err != nil {
		s.log.Error("control: enqueue reconciliation", zap.String("conn_id", id), zap.Error(err))
		writeJSONError(w, http.StatusServiceUnavailable, "enqueue_failed", "the reconciliation could not be enqueued; try again")
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"connection_id": id, "status": "enqueued"})
}

// handleRefresh enqueues a forced refresh (a worker refreshes the token even
// if it is not due, unless its version moved past the one read here), or
// with ?wait=1 refreshes synchronously (Source.ForceRefresh) and answers
// with the new expiry.
func (s *Server) handleRefresh(w http.ResponseWriter, r *http.Request) {
	id := pathID(w, r)
	if id == "" {
		return
	}
	wait := false
	if v := r.URL.Query().Get("wait"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			writeJSONError(w, http.StatusBadRequest, "invalid_wait", "wait must be 1, 0, true or false")
			return
		}
		wait = b
	}
	c, ok := s.checkStatus(w, r, id, "refresh", tokens.StatusActive, tokens.StatusPaused)
	if !ok {
		return
	}
	if !wait {
		if err := s.cfg.Enqueuer.RefreshNow(r.Context(), id, c.Version); err != nil {
			s.log.Error("control: enqueue refresh", zap.String("conn_id", id), zap.Error(err))
			writeJSONError(w, http.StatusServiceUnavailable, "enqueue_failed", "the refresh could not be enqueued; try again")
			return
		}
		writeJSON(w, http.StatusAccepted, map[string]string{"connection_id": id, "status": "enqueued"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RefreshWaitTimeout)
	defer cancel()
	if _, err := s.cfg.Source.ForceRefresh(ctx, id); err != nil {
		s.writeError(w, r, id, err)
		return
	}
	s.log.Info("control: connection refreshed by an operator", zap.String("conn_id", id))
	s.writeConnection(w, r, id, http.StatusOK)
}

// handleDisconnect revokes the connection's grant at Notion (best effort)
// and deletes its secrets.
func (s *Server) handleDisconnect(w http.ResponseWriter, r *http.Request) {
	id := pathID(w, r)
	if id == "" {
		return
	}
	c, err := s.store.Get(r.Context(), id)
	if err != nil {
		s.writeError(w, r, id, err)
		return
	}
	if c.Status == tokens.StatusDisconnected {
		writeJSON(w, http.StatusOK, map[string]any{"connection": s.view(r.Context(), c), "revoked": false})
		return
	}
	// The Source revokes with whatever pair is stored (paused connections
	// included), then deletes the secrets.
	revoked, err := s.cfg.Source.DisconnectAndRevoke(r.Context(), id, s.cfg.OAuth)
	if err != nil {
		s.writeError(w, r, id, err)
		return
	}
	s.log.Info("control: connection disconnected", zap.String("conn_id", id), zap.Bool("revoked", revoked))
	c, err = s.store.Get(r.Context(), id)
	if err != nil {
		s.writeError(w, r, id, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"connection": s.view(r.Context(), c), "revoked": revoked})
}

// handleImport stores a token pair obtained elsewhere. The body is secret:
// it is never logged, and error messages never quote it.
func (s *Server) handleImport(w http.ResponseWriter, r *http.Request) {
	req, msg := decodeImport(http.MaxBytesReader(w, r.Body, maxImportBody))
	if msg != "" {
		writeJSONError(w, http.StatusBadRequest, "invalid_body", msg)
		return
	}
	replace := false
	if v := r.URL.Query().Get("replace"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			writeJSONError(w, http.StatusBadRequest, "invalid_replace", "replace must be 1, 0, true or false")
			return
		}
		replace = b
	}
	id := req.ConnectionID
	existing, err := s.store.Get(r.Context(), id)
	switch {
	case errors.Is(err, tokens.ErrNotFound):
	case err != nil:
		s.writeError(w, r, id, err)
		return
	case !replace && (existing.Status == tokens.StatusActive || existing.Status == tokens.StatusPaused):
		writeJSONError(w, http.StatusConflict, "exists",
			fmt.Sprintf("connection %q exists and is %s; importing would replace its live tokens (pass replace=1 to do so)", id, existing.Status))
		return
	}
	g := &tokens.Grant{AccessToken: req.AccessToken, RefreshToken: req.RefreshToken,
		ExpiresIn: time.Duration(req.ExpiresIn) * time.Second}
	if _, err := s.store.Connect(r.Context(), id, g, s.cfg.Timing, tokens.ConnectOptions{Meta: req.Meta, Imported: true}); err != nil {
		s.writeError(w, r, id, err)
		return
	}
	s.indexWorkspace(r.Context(), req.Meta[MetaWorkspaceID], id)
	s.log.Info("control: connection imported", zap.String("conn_id", id), zap.Bool("replaced", existing != nil))
	if err := s.cfg.Enqueuer.SyncNow(r.Context(), id); err != nil {
		s.log.Warn("control: enqueue the first sync of an imported connection", zap.String("conn_id", id), zap.Error(err))
	}
	s.writeConnection(w, r, id, http.StatusCreated)
}

// decodeImport parses and validates an import body. The message it returns
// on failure names fields, never their values.
func decodeImport(body io.Reader) (ImportRequest, string) {
	var req ImportRequest
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		var te *json.UnmarshalTypeError
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			return req, fmt.Sprintf("the body is larger than %d bytes", maxImportBody)
		case errors.As(err, &te) && slices.Contains([]string{"connection_id", "access_token", "refresh_token", "expires_in", "meta"}, te.Field):
			return req, fmt.Sprintf("field %q has the wrong type", te.Field)
		case errors.As(err, &te) && strings.HasPrefix(te.Field, "meta"):
			return req, "meta values must be strings"
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			return req, "the body has a field that is not connection_id, access_token, refresh_token, expires_in or meta"
		default:
			return req, "the body is not a JSON object"
		}
	}
	if dec.More() {
		return req, "the body must hold one JSON object"
	}
	switch {
	case req.ConnectionID == "":
		return req, "connection_id is required"
	case tokens.ValidateID(req.ConnectionID) != nil:
		return req, "connection_id must be " + tokens.IDRule
	case req.AccessToken == "":
		return req, "access_token is required"
	case req.RefreshToken == "":
		return req, "refresh_token is required (without it the connection dies when the access token expires)"
	case len(req.AccessToken) > maxTokenLen || len(req.RefreshToken) > maxTokenLen:
		return req, fmt.Sprintf("tokens are at most %d characters", maxTokenLen)
	case strings.ContainsAny(req.AccessToken+req.RefreshToken, " \t\r\n"):
		return req, "tokens must not contain white space"
	case req.ExpiresIn < 0 || req.ExpiresIn > int64(maxImportLifetime/time.Second):
		return req, "expires_in must be a number of seconds from 0 to one year"
	case len(req.Meta) > maxMetaEntries:
		return req, fmt.Sprintf("meta has at most %d entries", maxMetaEntries)
	}
	for k, v := range req.Meta {
		if k == "" || len(k) > maxMetaKeyLen || len(v) > maxMetaValueLen {
			return req, fmt.Sprintf("meta keys are 1-%d characters and values at most %d", maxMetaKeyLen, maxMetaValueLen)
		}
	}
	return req, ""
}
