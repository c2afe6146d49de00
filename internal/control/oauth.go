package control

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/notionsync/notionsync/tokens"
	"github.com/notionsync/notionsync/tokens/notionauth"
)

// stateBytes is the entropy of an OAuth state.
const stateBytes = 32

// stateLen is the length of a state: stateBytes in unpadded base64url.
var stateLen = base64.RawURLEncoding.EncodedLen(stateBytes)

// workspaceConnPrefix names connections derived from a Notion workspace:
// "ws-<workspace_id>".
const workspaceConnPrefix = "ws-"

// WorkspaceConnectionID returns the connection id the OAuth callback gives a
// workspace connected without an explicit connection id, and that inbound
// Notion webhooks look up.
func WorkspaceConnectionID(workspaceID string) string { return workspaceConnPrefix + workspaceID }

// Meta keys stored with a connection by the OAuth callback.
const (
	MetaWorkspaceID   = "workspace_id"
	MetaWorkspaceName = "workspace_name"
	MetaBotID         = "bot_id"
	MetaOwnerType     = "owner_type"
)

// oauthState is what the server remembers about a started flow, stored in
// Redis under the state's hash until the callback takes it (or it expires).
type oauthState struct {
	// Created is the start time in Unix milliseconds.
	Created int64 `json:"created"`
	// ConnectionID is the connection to (re-)authorize; "" derives it from
	// the workspace.
	ConnectionID string `json:"connection_id,omitempty"`
	// Reauth records that ConnectionID existed at the start.
	Reauth bool `json:"reauth,omitempty"`
}

var errStateUnknown = errors.New("unknown, expired or already used state")

func newState() string {
	var b [stateBytes]byte
	// crypto/rand.Read never returns an error (it crashes the program
	// irrecoverably instead).
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// wellFormedState reports whether v could be a state this server issued.
func wellFormedState(v string) bool {
	if len(v) != stateLen {
		return false
	}
	b, err := base64.RawURLEncoding.DecodeString(v)
	return err == nil && len(b) == stateBytes
}

func stateDigest(domain, state string) [32]byte {
	return sha256.Sum256([]byte("notionsync oauth " + domain + "\x00" + state))
}

// stateKey is the Redis key of a state. Only a hash of the state is stored,
// so reading Redis does not yield a usable state.
func (s *Server) stateKey(state string) string {
	d := stateDigest("key", state)
	return s.cfg.KeyPrefix + "oauth:state:" + hex.EncodeToString(d[:])
}

// stateCookie binds a state to the browser that started the flow: a login
// CSRF (an attacker sending a victim to the callback with the attacker's own
// code and state) fails because the victim's browser lacks the cookie. Each
// flow has its own cookie name, so flows in two tabs do not clash. With
// https the "__Host-" prefix keeps sibling subdomains from planting it.
func (s *Server) stateCookie(state string) *http.Cookie {
	name := stateDigest("name", state)
	value := stateDigest("cookie", state)
	c := &http.Cookie{
		Name:     "notionsync_oauth_" + hex.EncodeToString(name[:8]),
		Value:    hex.EncodeToString(value[:]),
		Path:     "/",
		MaxAge:   int(s.cfg.StateTTL / time.Second),
		HttpOnly: true,
		Secure:   s.secure,
		// Lax: the cookie is sent on the top-level GET navigation from
		// Notion back to the callback, and on no cross-site subrequest.
		SameSite: http.SameSiteLaxMode,
	}
	if c.MaxAge <= 0 {
		c.MaxAge = 1
	}
	if s.secure {
		c.Name = "__Host-" + c.Name
	}
	return c
}

func (s *Server) cookieMatches(r *http.Request, state string) bool {
	want := s.stateCookie(state)
	got, err := r.Cookie(want.Name)
	if err != nil {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(got.Value), []byte(want.Value)) == 1
}

func (s *Server) clearStateCookie(w http.ResponseWriter, state string) {
	c := s.stateCookie(state)
	c.Value, c.MaxAge = "", -1
	http.SetCookie(w, c)
}

// handleStart begins an authorization: it stores a fresh state, binds it to
// the browser with a cookie and redirects to Notion's authorize URL.
//
// connection_id is optional. For an existing connection (a reconnect link)
// the callback re-authorizes it, but only with the workspace it already
// belongs to. A new connection with a chosen id needs the admin credential,
// so that nobody can claim ids the embedding product means to use.
func (s *Server) handleStart(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	connID := r.URL.Query().Get("connection_id")
	st := oauthState{Created: s.now().UnixMilli(), ConnectionID: connID}
	if connID != "" {
		if err := tokens.ValidateID(connID); err != nil {
			s.writePage(w, page{Status: http.StatusBadRequest, Title: "Invalid connection id",
				Message: "The link's connection id is not valid: ids are " + tokens.IDRule + "."})
			return
		}
		_, err := s.store.Get(ctx, connID)
		switch {
		case err == nil:
			st.Reauth = true
		case errors.Is(err, tokens.ErrNotFound):
			if !s.isAdmin(r) {
				s.writePage(w, page{Status: http.StatusNotFound, Title: "Unknown connection",
					Message: "There is no connection with this id to reconnect. Ask your administrator for a new link."})
				return
			}
		default:
			s.log.Error("control: oauth start: read connection", zap.String("conn_id", connID), zap.Error(err))
			s.writePage(w, unavailablePage())
			return
		}
	}
	state := newState()
	val, err := json.Marshal(st)
	if err != nil {
		s.writePage(w, unavailablePage())
		return
	}
	ok, err := s.cfg.Redis.SetNX(ctx, s.stateKey(state), val, s.cfg.StateTTL).Result()
	if err != nil || !ok {
		s.log.Error("control: oauth start: store state", zap.Bool("collision", err == nil), zap.Error(err))
		s.writePage(w, unavailablePage())
		return
	}
	http.SetCookie(w, s.stateCookie(state))
	w.Header().Set("Cache-Control", "no-store")
	s.log.Debug("control: oauth flow started", zap.String("conn_id", connID), zap.Bool("reauth", st.Reauth))
	http.Redirect(w, r, s.cfg.OAuth.AuthorizeURL(s.redirectURI, state), http.StatusFound)
}

func unavailablePage() page {
	return page{Status: http.StatusServiceUnavailable, Outcome: OAuthStoreFailed, Title: "Temporarily unavailable",
		Message: "notionsync cannot complete this step right now. Please try again in a minute."}
}

// callbackParams are the parameters Notion sends back to the redirect URI.
type callbackParams struct {
	State, Code, Error string
}

// maxCallbackQuery bounds the callback's query string.
const maxCallbackQuery = 8 << 10

// parseCallback parses the callback's raw query. Parameters that matter
// must appear at most once (a duplicated state or code is refused rather
// than guessed at).
func parseCallback(rawQuery string) (callbackParams, error) {
	if len(rawQuery) > maxCallbackQuery {
		return callbackParams{}, errors.New("the query string is too long")
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return callbackParams{}, errors.New("the query string is malformed")
	}
	for _, k := range []string{"state", "code", "error"} {
		if len(q[k]) > 1 {
			return callbackParams{}, fmt.Errorf("the %s parameter appears more than once", k)
		}
	}
	return callbackParams{State: q.Get("state"), Code: q.Get("code"), Error: q.Get("error")}, nil
}

// oauthErrorCode returns Notion's error parameter if it looks like an OAuth
// error code, else "unknown" (it is shown on a page and logged).
func oauthErrorCode(v string) string {
	if v == "" || len(v) > 64 {
		return "unknown"
	}
	for _, r := range v {
		if !(r >= 'a' && r <= 'z' || r == '_') {
			return "unknown"
		}
	}
	return v
}

// handleCallback completes an authorization: it checks the state (well
// formed, bound to this browser, known, unused, not expired), exchanges the
// code with exactly the configured redirect URI, stores the grant (creating
// or re-authorizing the connection), enqueues a sync and shows a page.
func (s *Server) handleCallback(w http.ResponseWriter, r *http.Request) {
	p := s.callback(w, r)
	if f := s.hooks.OnOAuth; f != nil && p.Outcome != "" {
		f(p.Outcome)
	}
	s.writePage(w, p)
}

func (s *Server) callback(w http.ResponseWriter, r *http.Request) page {
	restart := s.publicURL + StartPath
	badState := func(msg string) page {
		return page{Status: http.StatusBadRequest, Outcome: OAuthBadState, Title: "This sign-in link cannot be used",
			Message: msg, Link: restart}
	}
	q, err := parseCallback(r.URL.RawQuery)
	if err != nil {
		return page{Status: http.StatusBadRequest, Outcome: OAuthBadRequest, Title: "Invalid request",
			Message: "The response from Notion could not be read: " + err.Error() + ".", Link: restart}
	}
	if q.State == "" {
		return badState("The response from Notion carries no state. Please start the connection again.")
	}
	if !wellFormedState(q.State) {
		s.log.Info("control: oauth callback with a forged or malformed state")
		return badState("This sign-in request is unknown. Please start the connection again.")
	}
	if !s.cookieMatches(r, q.State) {
		s.log.Info("control: oauth callback without the browser's state cookie")
		return badState("This sign-in was not started in this browser, or it took too long. " +
			"Please start the connection again in the same browser (cookies must be enabled).")
	}
	st, err := s.takeState(r.Context(), q.State)
	s.clearStateCookie(w, q.State)
	switch {
	case errors.Is(err, errStateUnknown):
		s.log.Info("control: oauth callback with an unknown, expired or reused state")
		return badState("This sign-in link is unknown, expired, or was already used. Please start the connection again.")
	case err != nil:
		s.log.Error("control: oauth callback: read state", zap.Error(err))
		p := unavailablePage()
		p.Link = restart
		return p
	}
	if st.ConnectionID != "" {
		restart += "?connection_id=" + url.QueryEscape(st.ConnectionID)
	}
	if age := s.now().Sub(time.UnixMilli(st.Created)); age > s.cfg.StateTTL || age < -time.Minute {
		s.log.Info("control: oauth callback with an expired state", zap.Duration("age", age))
		p := badState("This sign-in request expired. Please start the connection again.")
		p.Link = restart
		return p
	}
	if q.Error != "" {
		code := oauthErrorCode(q.Error)
		s.log.Info("control: notion did not authorize", zap.String("error", code), zap.String("conn_id", st.ConnectionID))
		if code == "access_denied" {
			return page{Status: http.StatusForbidden, Outcome: OAuthDenied, Title: "Connection cancelled",
				Message: "Access to Notion was not granted, so nothing was connected. You can close this window, or start again.",
				Link:    restart}
		}
		return page{Status: http.StatusBadRequest, Outcome: OAuthProviderError, Title: "Notion did not authorize the connection",
			Message: "Notion answered with the error \"" + code + "\". Please start the connection again.", Link: restart}
	}
	if q.Code == "" {
		return page{Status: http.StatusBadRequest, Outcome: OAuthBadRequest, Title: "Invalid request",
			Message: "The response from Notion carries no authorization code. Please start the connection again.", Link: restart}
	}

	// The exchange is detached from the browser's request: Notion issues
	// the grant whether or not the browser waits, and a grant thrown away
	// half-way is a connection lost.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), s.cfg.ExchangeTimeout)
	defer cancel()
	ex, err := s.cfg.OAuth.Exchange(ctx, q.Code, s.redirectURI)
	if err != nil {
		// notionauth errors never contain the code or a token.
		s.log.Warn("control: authorization code exchange failed", zap.String("conn_id", st.ConnectionID), zap.Error(err))
		msg := "Notion did not complete the connection. Please try again in a minute."
		var pe *tokens.ProviderError
		if errors.As(err, &pe) {
			switch pe.Kind {
			case tokens.KindInvalidGrant:
				msg = "Notion refused the authorization code: it expired, was already used, or the redirect URI " +
					"configured here differs from the one registered with the integration. Please start again; " +
					"if this keeps happening, an administrator must check the redirect URI."
			case tokens.KindInvalidClient:
				msg = "Notion refused this integration's credentials. An administrator must check its client id and secret."
			}
		}
		return page{Status: http.StatusBadGateway, Outcome: OAuthExchangeFailed, Title: "Connection failed", Message: msg, Link: restart}
	}
	return s.completeConnect(ctx, st, ex, restart)
}

// takeState atomically reads and deletes a state (GETDEL): it can be used
// once.
func (s *Server) takeState(ctx context.Context, state string) (*oauthState, error) {
	raw, err := s.cfg.Redis.GetDel(ctx, s.stateKey(state)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, errStateUnknown
	}
	if err != nil {
		return nil, err
	}
	var st oauthState
	if err := json.Unmarshal(raw, &st); err != nil {
		return nil, errStateUnknown
	}
	if st.ConnectionID != "" && tokens.ValidateID(st.ConnectionID) != nil {
		return nil, errStateUnknown
	}
	return &st, nil
}

// completeConnect stores an exchanged grant and enqueues the first sync.
func (s *Server) completeConnect(ctx context.Context, st *oauthState, ex *notionauth.Exchange, restart string) page {
	fail := func(status int, outcome OAuthOutcome, title, msg string) page {
		return page{Status: status, Outcome: outcome, Title: title, Message: msg, Link: restart}
	}
	connID := st.ConnectionID
	if connID == "" {
		connID = WorkspaceConnectionID(ex.WorkspaceID)
		if ex.WorkspaceID == "" || tokens.ValidateID(connID) != nil {
			s.log.Error("control: notion returned an unusable workspace id", zap.Int("length", len(ex.WorkspaceID)))
			s.revokeBestEffort(ctx, "", ex.AccessToken)
			return fail(http.StatusBadGateway, OAuthExchangeFailed, "Connection failed",
				"Notion returned a workspace this service cannot name. Please contact the administrator.")
		}
	}
	existing, err := s.store.Get(ctx, connID)
	switch {
	case errors.Is(err, tokens.ErrNotFound):
		existing = nil
	case err != nil:
		s.log.Error("control: oauth callback: read connection", zap.String("conn_id", connID), zap.Error(err))
		return fail(http.StatusServiceUnavailable, OAuthStoreFailed, "Temporarily unavailable",
			"The connection could not be saved. Please start again in a minute.")
	}
	if existing != nil {
		if ws := existing.Meta[MetaWorkspaceID]; ws != "" && ws != ex.WorkspaceID {
			s.log.Warn("control: re-authorization with a different workspace refused",
				zap.String("conn_id", connID), zap.String("stored_workspace_id", ws), zap.String("workspace_id", ex.WorkspaceID))
			// The new grant is not kept; revoke it unless that workspace
			// is connected here under its own id (revoking could end that
			// connection too).
			if _, err := s.store.Get(ctx, WorkspaceConnectionID(ex.WorkspaceID)); errors.Is(err, tokens.ErrNotFound) {
				s.revokeBestEffort(ctx, connID, ex.AccessToken)
			}
			return fail(http.StatusConflict, OAuthWorkspaceMismatch, "Wrong workspace",
				"This connection belongs to another Notion workspace. Please start again and choose the workspace it was connected to.")
		}
	}
	meta := map[string]string{}
	if existing != nil {
		maps.Copy(meta, existing.Meta)
	}
	meta[MetaWorkspaceID] = ex.WorkspaceID
	meta[MetaWorkspaceName] = ex.WorkspaceName
	meta[MetaBotID] = ex.BotID
	if ot := ownerType(ex.Owner); ot != "" {
		meta[MetaOwnerType] = ot
	}
	if _, err := s.store.Connect(ctx, connID, &ex.Grant, s.cfg.Timing, tokens.ConnectOptions{Meta: meta}); err != nil {
		s.log.Error("control: store the new grant", zap.String("conn_id", connID), zap.Error(err))
		return fail(http.StatusServiceUnavailable, OAuthStoreFailed, "Temporarily unavailable",
			"The connection could not be saved. Please start again in a minute.")
	}
	s.indexWorkspace(ctx, ex.WorkspaceID, connID)
	outcome, title := OAuthConnected, "Connected"
	if existing != nil {
		outcome, title = OAuthReauthorized, "Reconnected"
	}
	s.log.Info("control: connection authorized", zap.String("conn_id", connID),
		zap.String("workspace_id", ex.WorkspaceID), zap.Bool("reauthorized", existing != nil))
	if err := s.cfg.Enqueuer.SyncNow(ctx, connID); err != nil {
		// The scheduler's sweep picks the connection up anyway.
		s.log.Warn("control: enqueue the first sync", zap.String("conn_id", connID), zap.Error(err))
		if f := s.hooks.OnOAuth; f != nil {
			f(OAuthSyncNotEnqueued)
		}
	}
	name := ex.WorkspaceName
	if strings.TrimSpace(name) == "" {
		name = "Your Notion workspace"
	}
	return page{Status: http.StatusOK, Outcome: outcome, OK: true, Title: title,
		Message: name + " is connected. Its pages will appear as they are synced.",
		Hint:    "You can close this window."}
}

// ownerType returns the "type" of Notion's owner object ("user" or
// "workspace"), or "".
func ownerType(raw json.RawMessage) string {
	var o struct {
		Type string `json:"type"`
	}
	if len(raw) == 0 || json.Unmarshal(raw, &o) != nil || len(o.Type) > 32 {
		return ""
	}
	return o.Type
}

// revokeBestEffort revokes token at Notion, logging (never returning) a
// failure.
func (s *Server) revokeBestEffort(ctx context.Context, connID, token string) bool {
	if token == "" {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.cfg.OAuth.Revoke(ctx, token); err != nil {
		s.log.Warn("control: revoke at notion failed", zap.String("conn_id", connID), zap.Error(err))
		return false
	}
	return true
}
