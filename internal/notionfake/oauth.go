package notionfake

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"go.uber.org/zap"
)

// maxOAuthBody bounds the request bodies the OAuth endpoints read.
const maxOAuthBody = 1 << 20

func (s *Server) registerOAuthRoutes() {
	s.mux.HandleFunc("POST /v1/oauth/token", s.handleToken)
	s.mux.HandleFunc("GET /v1/oauth/authorize", s.handleAuthorize)
	s.mux.HandleFunc("POST /v1/oauth/revoke", s.handleRevoke)
	s.mux.HandleFunc("POST /v1/oauth/introspect", s.handleIntrospect)
}

// oauthError is an OAuth-level rejection, written in the configured style.
type oauthError struct {
	status int
	code   string
	desc   string
}

func errInvalidGrant(desc string) *oauthError {
	return &oauthError{status: http.StatusBadRequest, code: "invalid_grant", desc: desc}
}

// tokenResponse is the body of a successful token grant, as Notion sends it.
type tokenResponse struct {
	AccessToken          string          `json:"access_token"`
	TokenType            string          `json:"token_type"`
	RefreshToken         *string         `json:"refresh_token"`
	ExpiresIn            *int64          `json:"expires_in,omitempty"`
	BotID                string          `json:"bot_id"`
	WorkspaceID          string          `json:"workspace_id"`
	WorkspaceName        string          `json:"workspace_name"`
	WorkspaceIcon        *string         `json:"workspace_icon"`
	Owner                json.RawMessage `json:"owner"`
	DuplicatedTemplateID *string         `json:"duplicated_template_id"`
}

type tokenRequest struct {
	GrantType    string `json:"grant_type"`
	Code         string `json:"code"`
	RedirectURI  string `json:"redirect_uri"`
	RefreshToken string `json:"refresh_token"`
}

// outcome is what the token endpoint answers, decided before any latency.
type outcome struct {
	status int
	body   any
	header http.Header
	oerr   *oauthError
	drop   bool
}

func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	out, grant := s.tokenOutcome(w, r)
	if out != nil && !s.delay(r) {
		out = nil // the fake was closed while the response was delayed
	}
	if out == nil || out.drop {
		s.mu.Lock()
		s.stats.Dropped++
		s.mu.Unlock()
		s.log.Debug("notionfake: token request dropped", zap.String("grant_type", grant))
		dropConnection(w)
		return
	}
	s.log.Debug("notionfake: token request", zap.String("grant_type", grant), zap.Int("status", out.status))
	s.writeOutcome(w, out)
}

// tokenOutcome decides the token endpoint's answer, committing any grant. It
// returns nil when the request was aborted while parked at a Gate.
func (s *Server) tokenOutcome(w http.ResponseWriter, r *http.Request) (*outcome, string) {
	s.mu.Lock()
	s.stats.TokenRequests++
	f := s.faults.takePre()
	switch f.kind {
	case faultRateLimit:
		s.stats.RateLimited++
	case faultFail:
		s.stats.InjectedFailures++
	}
	s.mu.Unlock()

	switch f.kind {
	case faultRateLimit:
		secs := int64((f.retryAfter + time.Second - 1) / time.Second)
		h := http.Header{"Retry-After": {strconv.FormatInt(secs, 10)}}
		return &outcome{status: http.StatusTooManyRequests, header: h, body: notionErrorBody(http.StatusTooManyRequests,
			"rate_limited", "You have been rated limited. Please try again in a few minutes.",
			map[string]any{"retry_after": secs, "rate_limit_reason": "connection_limit"})}, ""
	case faultFail:
		return &outcome{status: f.status, body: notionErrorBody(f.status, codeForStatus(f.status),
			"Injected failure.", nil)}, ""
	}

	if o := s.checkVersion(r); o != nil {
		return o, ""
	}
	if o := s.checkClient(r); o != nil {
		return o, ""
	}
	var req tokenRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxOAuthBody)).Decode(&req); err != nil {
		return s.oauthOutcome(&oauthError{status: http.StatusBadRequest, code: "invalid_request",
			desc: "Request body is not valid JSON."}), ""
	}
	switch req.GrantType {
	case "authorization_code":
		s.mu.Lock()
		resp, oerr := s.exchangeLocked(req.Code, req.RedirectURI)
		s.mu.Unlock()
		if oerr != nil {
			return s.oauthOutcome(oerr), req.GrantType
		}
		return &outcome{status: http.StatusOK, body: resp}, req.GrantType
	case "refresh_token":
		return s.refreshOutcome(req.RefreshToken), req.GrantType
	case "":
		return s.oauthOutcome(&oauthError{status: http.StatusBadRequest, code: "invalid_request",
			desc: "grant_type is required."}), ""
	default:
		return s.oauthOutcome(&oauthError{status: http.StatusBadRequest, code: "unsupported_grant_type",
			desc: "Unsupported grant_type."}), "unsupported"
	}
}

// refreshOutcome runs a refresh grant, through the installed gate if any.
func (s *Server) refreshOutcome(token string) *outcome {
	s.mu.Lock()
	g, seq := s.catchGateLocked()
	wsID := ""
	if rt, ok := s.refresh[token]; ok {
		wsID = rt.conn.ws.id
	}
	s.mu.Unlock()

	var resp *tokenResponse
	var oerr *oauthError
	decided := false
	if g != nil {
		rotateFirst := g.rotateFirst(seq)
		if rotateFirst {
			s.mu.Lock()
			resp, oerr = s.refreshLocked(token)
			s.mu.Unlock()
			decided = true
		}
		if aborted := g.park(Arrival{Seq: seq, WorkspaceID: wsID, Rotated: resp != nil}, s.closed); aborted {
			return nil
		}
	}
	if !decided {
		s.mu.Lock()
		resp, oerr = s.refreshLocked(token)
		s.mu.Unlock()
	}
	if oerr != nil {
		return s.oauthOutcome(oerr)
	}
	s.mu.Lock()
	drop := s.faults.takeDrop()
	s.mu.Unlock()
	return &outcome{status: http.StatusOK, body: resp, drop: drop}
}

// refreshLocked spends a refresh token. The caller holds s.mu.
func (s *Server) refreshLocked(token string) (*tokenResponse, *oauthError) {
	rt, ok := s.refresh[token]
	if !ok {
		return nil, errInvalidGrant(s.echo("Invalid refresh token.", token))
	}
	c := rt.conn
	if c.revoked {
		return nil, errInvalidGrant(s.echo("The integration has been removed from the workspace.", token))
	}
	if c.liveRefresh != token {
		return nil, errInvalidGrant(s.echo("The refresh token has already been used.", token))
	}
	if s.opts.RevokeAccessTokensOnRefresh {
		for _, a := range c.accessList {
			s.access[a].superseded = true
		}
	}
	at := s.issueAccessLocked(c)
	var newRefresh *string
	if !s.opts.NullRefreshToken {
		nrt := s.issueRefreshLocked(c)
		newRefresh = &nrt
	}
	c.ws.rotations++
	s.stats.RefreshGrants++
	return s.tokenResponseLocked(c.ws, at, newRefresh), nil
}

// exchangeLocked spends an authorization code. The caller holds s.mu.
func (s *Server) exchangeLocked(code, redirectURI string) (*tokenResponse, *oauthError) {
	ac, ok := s.codes[code]
	switch {
	case !ok || code == "":
		return nil, errInvalidGrant(s.echo("Invalid code.", code))
	case ac.used:
		return nil, errInvalidGrant(s.echo("Code has already been used.", code))
	case !ac.expiresAt.IsZero() && !s.now().Before(ac.expiresAt):
		return nil, errInvalidGrant(s.echo("Code has expired.", code))
	case ac.redirectURI != redirectURI:
		// The code is not consumed: a corrected request may still use it.
		return nil, errInvalidGrant("Invalid redirect_uri: it does not match the one in the authorization request.")
	}
	ac.used = true
	c := s.connectLocked(ac.ws)
	at := s.issueAccessLocked(c)
	rt := s.issueRefreshLocked(c)
	s.stats.Exchanges++
	return s.tokenResponseLocked(ac.ws, at, &rt), nil
}

// connectLocked starts a new connection for ws, revoking the previous one.
func (s *Server) connectLocked(ws *workspace) *connection {
	if ws.conn != nil {
		ws.conn.revoked = true
	}
	c := &connection{ws: ws}
	ws.conn = c
	return c
}

func (s *Server) issueAccessLocked(c *connection) string {
	tok := newAccessTokenString()
	now := s.now()
	at := &accessToken{conn: c, issuedAt: now}
	if s.opts.AccessTokenLifetime > 0 {
		at.expiresAt = now.Add(s.opts.AccessTokenLifetime)
	}
	s.access[tok] = at
	c.accessList = append(c.accessList, tok)
	return tok
}

func (s *Server) issueRefreshLocked(c *connection) string {
	tok := newRefreshTokenString()
	s.refresh[tok] = &refreshToken{conn: c, issuedAt: s.now()}
	c.liveRefresh = tok
	return tok
}

func (s *Server) tokenResponseLocked(ws *workspace, access string, refresh *string) *tokenResponse {
	owner, _ := json.Marshal(map[string]any{
		"type": "user",
		"user": map[string]any{
			"object":     "user",
			"id":         ws.ownerID,
			"name":       "Fake User",
			"avatar_url": nil,
			"type":       "person",
			"person":     map[string]any{"email": "fake.user@example.com"},
		},
	})
	icon := ws.icon
	resp := &tokenResponse{
		AccessToken:   access,
		TokenType:     "bearer",
		RefreshToken:  refresh,
		BotID:         ws.botID,
		WorkspaceID:   ws.id,
		WorkspaceName: ws.name,
		WorkspaceIcon: &icon,
		Owner:         owner,
	}
	if s.opts.ExpiresIn > 0 {
		secs := int64(s.opts.ExpiresIn / time.Second)
		resp.ExpiresIn = &secs
	}
	return resp
}

// workspaceLocked returns the workspace id, creating it if needed ("" makes a
// new one with a random id).
func (s *Server) workspaceLocked(id string) *workspace {
	if id != "" {
		if ws, ok := s.workspaces[id]; ok {
			return ws
		}
	} else {
		id = newUUID()
	}
	ws := &workspace{
		id:      id,
		name:    "Fake Workspace " + shortWorkspaceID(id),
		icon:    "📘",
		botID:   newUUID(),
		ownerID: newUUID(),
	}
	s.workspaces[id] = ws
	return ws
}

// shortWorkspaceID is the part of a workspace id its name shows: the first
// group of a UUID (random ids, as Notion's), or a chosen id such as
// "sandbox-ws" whole, since cutting that at 8 characters named the seeded
// workspace "Fake Workspace sandbox-".
func shortWorkspaceID(id string) string {
	if len(id) == 36 && id[8] == '-' && id[13] == '-' && id[18] == '-' && id[23] == '-' {
		return id[:8]
	}
	return id
}

func (s *Server) issueCodeLocked(ws *workspace, redirectURI string) string {
	code := newCodeString()
	ac := &authCode{ws: ws, redirectURI: redirectURI}
	if s.opts.CodeLifetime > 0 {
		ac.expiresAt = s.now().Add(s.opts.CodeLifetime)
	}
	s.codes[code] = ac
	return code
}

// echo appends the secret to msg when Options.EchoTokensInErrors is set.
func (s *Server) echo(msg, secret string) string {
	if s.opts.EchoTokensInErrors && secret != "" {
		return fmt.Sprintf("%s (token %q)", msg, secret)
	}
	return msg
}

// handleAuthorize auto-approves an authorization request: it issues a code
// bound to redirect_uri and redirects there with code and state.
func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	redirect := q.Get("redirect_uri")
	if redirect == "" {
		writeNotionError(w, http.StatusBadRequest, "invalid_request", "redirect_uri is required.")
		return
	}
	target, err := url.Parse(redirect)
	if err != nil || !target.IsAbs() {
		writeNotionError(w, http.StatusBadRequest, "invalid_request", "redirect_uri must be an absolute URI.")
		return
	}
	if len(s.opts.RedirectURIs) > 0 && !slices.Contains(s.opts.RedirectURIs, redirect) {
		writeNotionError(w, http.StatusBadRequest, "invalid_request", "redirect_uri is not registered for this integration.")
		return
	}
	// RFC 6749 §4.1.2.1: an unknown client is not redirected to.
	if q.Get("client_id") != s.opts.ClientID {
		s.mu.Lock()
		s.stats.InvalidClients++
		s.mu.Unlock()
		writeNotionError(w, http.StatusBadRequest, "invalid_client", "Invalid client_id.")
		return
	}
	params := url.Values{}
	s.mu.Lock()
	deny := s.denyAuthz
	switch {
	case q.Get("response_type") != "code":
		params.Set("error", "unsupported_response_type")
	case q.Get("owner") != "user":
		params.Set("error", "invalid_request")
		params.Set("error_description", "owner must be user")
	case deny:
		params.Set("error", "access_denied")
	default:
		params.Set("code", s.issueCodeLocked(s.workspaceLocked(s.authzWS), redirect))
	}
	s.mu.Unlock()
	if q.Has("state") {
		params.Set("state", q.Get("state"))
	}
	tq := target.Query()
	for k, v := range params {
		tq[k] = v
	}
	target.RawQuery = tq.Encode()
	s.log.Debug("notionfake: authorize", zap.Bool("approved", params.Has("code")))
	http.Redirect(w, r, target.String(), http.StatusFound)
}

// handleRevoke revokes the connection owning the token (access or refresh,
// current or spent). Unknown tokens are answered 200 too (RFC 7009).
func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	token, o := s.tokenParam(w, r)
	if o != nil {
		s.writeOutcome(w, o)
		return
	}
	s.mu.Lock()
	var c *connection
	if at, ok := s.access[token]; ok {
		c = at.conn
	} else if rt, ok := s.refresh[token]; ok {
		c = rt.conn
	}
	if c != nil && !c.revoked {
		c.revoked = true
		s.stats.Revocations++
	}
	s.mu.Unlock()
	s.log.Debug("notionfake: revoke", zap.Bool("known", c != nil))
	writeJSON(w, http.StatusOK, map[string]any{"request_id": newUUID()})
}

// handleIntrospect answers {active, scope, iat} for a token.
func (s *Server) handleIntrospect(w http.ResponseWriter, r *http.Request) {
	token, o := s.tokenParam(w, r)
	if o != nil {
		s.writeOutcome(w, o)
		return
	}
	s.mu.Lock()
	s.stats.Introspections++
	active := false
	var iat time.Time
	if at, ok := s.access[token]; ok {
		active = !at.conn.revoked && !at.superseded && (at.expiresAt.IsZero() || s.now().Before(at.expiresAt))
		iat = at.issuedAt
	} else if rt, ok := s.refresh[token]; ok {
		active = !rt.conn.revoked && rt.conn.liveRefresh == token
		iat = rt.issuedAt
	}
	s.mu.Unlock()
	body := map[string]any{"active": active, "request_id": newUUID()}
	if active {
		body["scope"] = "read_content update_content insert_content read_user_with_email"
		body["iat"] = iat.Unix()
	}
	writeJSON(w, http.StatusOK, body)
}

// tokenParam validates an OAuth request carrying {"token":..}.
func (s *Server) tokenParam(w http.ResponseWriter, r *http.Request) (string, *outcome) {
	if o := s.checkVersion(r); o != nil {
		return "", o
	}
	if o := s.checkClient(r); o != nil {
		return "", o
	}
	var body struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxOAuthBody)).Decode(&body); err != nil || body.Token == "" {
		return "", s.oauthOutcome(&oauthError{status: http.StatusBadRequest, code: "invalid_request",
			desc: "body.token should be defined."})
	}
	return body.Token, nil
}

func (s *Server) checkVersion(r *http.Request) *outcome {
	if r.Header.Get("Notion-Version") != "" {
		return nil
	}
	return &outcome{status: http.StatusBadRequest, body: notionErrorBody(http.StatusBadRequest, "missing_version",
		"Notion-Version header failed validation: Notion-Version header should be defined, instead was `undefined`.", nil)}
}

func (s *Server) checkClient(r *http.Request) *outcome {
	id, secret, ok := r.BasicAuth()
	if ok &&
		subtle.ConstantTimeCompare([]byte(id), []byte(s.opts.ClientID)) == 1 &&
		subtle.ConstantTimeCompare([]byte(secret), []byte(s.opts.ClientSecret)) == 1 {
		return nil
	}
	return s.oauthOutcome(&oauthError{status: http.StatusUnauthorized, code: "invalid_client",
		desc: "Client authentication failed."})
}

// oauthOutcome renders an OAuth error in the current style and counts it.
func (s *Server) oauthOutcome(e *oauthError) *outcome {
	s.mu.Lock()
	style := s.errStyle
	if style == ErrorStyleAlternating {
		style = ErrorStyle(s.errCount % 2)
	}
	s.errCount++
	switch e.code {
	case "invalid_grant":
		s.stats.InvalidGrants++
	case "invalid_client":
		s.stats.InvalidClients++
	}
	s.mu.Unlock()
	if style == ErrorStyleNotion {
		return &outcome{status: e.status, oerr: e, body: notionErrorBody(e.status, e.code, e.desc, nil)}
	}
	return &outcome{status: e.status, oerr: e, body: map[string]any{"error": e.code, "error_description": e.desc}}
}

func (s *Server) writeOutcome(w http.ResponseWriter, o *outcome) {
	for k, v := range o.header {
		w.Header()[k] = v
	}
	if nb, ok := o.body.(notionError); ok {
		w.Header().Set("x-notion-request-id", nb.RequestID)
	}
	writeJSON(w, o.status, o.body)
}

// delay waits out the configured latency. It reports false when the fake was
// closed meanwhile (the request is then to be dropped). A client that gives
// up ends the wait early; the response then goes nowhere.
func (s *Server) delay(r *http.Request) bool {
	s.mu.Lock()
	d := s.faults.latency
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

func codeForStatus(status int) string {
	switch status {
	case http.StatusBadGateway:
		return "bad_gateway"
	case http.StatusServiceUnavailable:
		return "service_unavailable"
	case http.StatusGatewayTimeout:
		return "gateway_timeout"
	case 529:
		return "service_overload"
	case http.StatusTooManyRequests:
		return "rate_limited"
	}
	if status >= 500 {
		return "internal_server_error"
	}
	return "invalid_request"
}
