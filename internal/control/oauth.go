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
	"strconv"
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
	// Reauth records that ConnectionID existed at the start and a valid
	// reconnect link was presented.
	Reauth bool `json:"reauth,omitempty"`
	// LinkNonce is the connection's link nonce the link was checked against;
	// the callback's write commits only while it is still the stored one.
	LinkNonce string `json:"link_nonce,omitempty"`
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

// oauthTag is the hash tag of the OAuth keys: a state and the zset that
// caps them are written by one script and deleted by one MULTI, which Redis
// Cluster allows only within one slot. Flows are few (MaxOAuthStates), so
// one slot carries them easily.
const oauthTag = "{oauth}:"

// stateKey is the Redis key of a state. Only a hash of the state is stored,
// so reading Redis does not yield a usable state.
func (s *Server) stateKey(state string) string {
	d := stateDigest("key", state)
	return s.cfg.KeyPrefix + oauthTag + "oauth:state:" + hex.EncodeToString(d[:])
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
// connection_id is optional:
//   - absent: a new connection, named after the workspace Notion returns
//     (or re-authorizing that workspace's own "ws-" connection);
//   - an id that does not exist: a new connection with that id, only for a
//     caller holding the admin credential (so that nobody can claim ids the
//     embedding product means to use);
//   - an existing id: a reconnect, only with a valid reconnect link
//     (expires and sig, see link.go); the callback then binds only the
//     workspace the connection already belongs to.
//
// An anonymous caller gets one answer (status and body) for an unknown id, a
// known id without a link, and a forged, expired or spent link: whether an
// id exists is not observable without a credential.
func (s *Server) handleStart(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	connID := q.Get("connection_id")
	st := oauthState{Created: s.now().UnixMilli(), ConnectionID: connID}
	if connID != "" {
		if err := tokens.ValidateID(connID); err != nil {
			s.writePage(w, page{Status: http.StatusBadRequest, Title: "Invalid connection id",
				Message: "The link's connection id is not valid: ids are " + tokens.IDRule + "."})
			return
		}
		link, hasLink := parseLinkParams(q)
		c, err := s.store.Get(ctx, connID)
		switch {
		case err == nil && hasLink && s.checkLink(c, link):
			if c.Meta[MetaWorkspaceID] == "" {
				// Only a valid link gets here, so this answer reveals
				// nothing to someone without one.
				s.writePage(w, page{Status: http.StatusConflict, Title: "This connection cannot be reconnected yet",
					Message: "notionsync does not know which Notion workspace this connection belongs to, so it cannot " +
						"make sure a reconnect keeps it. Ask your administrator: they can import it again with its " +
						"workspace id, or refresh it once while its tokens still work."})
				return
			}
			st.Reauth, st.LinkNonce = true, c.LinkNonce
		case err == nil && !hasLink && s.isAdmin(r):
			s.writePage(w, page{Status: http.StatusConflict, Title: "Use a reconnect link",
				Message: "This connection exists. Reconnecting it needs a reconnect link: POST /api/v1/connections/" +
					connID + "/reconnect-link, or notionsyncctl reconnect-link " + connID + "."})
			return
		case errors.Is(err, tokens.ErrNotFound) && !hasLink && s.isAdmin(r):
			// A new connection with a chosen id.
		case err == nil, errors.Is(err, tokens.ErrNotFound):
			s.log.Info("control: oauth start refused: no valid reconnect link",
				zap.String("client", s.clientAddr(r).String()), zap.Bool("link", hasLink))
			s.writePage(w, badLinkPage())
			return
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
	switch err := s.putState(ctx, state, val); {
	case errors.Is(err, errTooManyStates):
		s.log.Warn("control: oauth start refused: too many sign-ins in progress", zap.Int("max_states", s.cfg.MaxOAuthStates))
		w.Header().Set("Retry-After", strconv.Itoa(60))
		s.writePage(w, page{Status: http.StatusServiceUnavailable, Title: "Too many sign-ins in progress",
			Message: "notionsync has too many unfinished sign-ins right now. Please try again in a few minutes."})
		return
	case err != nil:
		s.log.Error("control: oauth start: store state", zap.Error(err))
		s.writePage(w, unavailablePage())
		return
	}
	http.SetCookie(w, s.stateCookie(state))
	w.Header().Set("Cache-Control", "no-store")
	s.log.Debug("control: oauth flow started", zap.String("conn_id", connID), zap.Bool("reauth", st.Reauth))
	http.Redirect(w, r, s.cfg.OAuth.AuthorizeURL(s.redirectURI, state), http.StatusFound)
}

// badLinkPage is the one answer to every start that names a connection
// without a usable credential.
func badLinkPage() page {
	return page{Status: http.StatusForbidden, Title: "This link cannot be used",
		Message: "This sign-in link is not valid: it may have expired or already been used. " +
			"Ask your administrator for a new reconnect link."}
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
	switch {
	case st.Reauth:
		// The link is a credential and is not kept with the state; the
		// person opens it again (it works until it is used or expires).
		restart = ""
	case st.ConnectionID != "":
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
	if !s.exchanges.AllowN(s.now(), 1) {
		// A state and its cookie come from /oauth/start, which is
		// rate-limited per client; this bounds the code exchanges (each
		// spends a token-endpoint call with the client secret) of all
		// clients together.
		s.log.Warn("control: code exchange refused: the exchange rate limit is reached", zap.String("conn_id", st.ConnectionID))
		return page{Status: http.StatusServiceUnavailable, Outcome: OAuthRateLimited, Title: "Temporarily busy",
			Message: "notionsync is handling too many sign-ins right now. Please start again in a minute.", Link: restart}
	}
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

// The outstanding states are also members of a sorted set scored by their
// expiry, so that their number can be capped (Config.MaxOAuthStates):
// Redis runs noeviction, and nothing an anonymous caller does may grow it
// without bound. Members are the states' key digests, never states.
func (s *Server) statesKey() string { return s.cfg.KeyPrefix + oauthTag + "oauth:states" }

var errTooManyStates = errors.New("too many outstanding oauth states")

// putStateScript drops expired members, refuses when the cap is reached,
// and stores the state with its TTL.
//
//	KEYS[1] state key   KEYS[2] states zset
//	ARGV[1] value   ARGV[2] now ms   ARGV[3] ttl ms   ARGV[4] cap   ARGV[5] member
//
// Returns 1 (stored), 0 (cap reached) or -1 (state collision).
var putStateScript = redis.NewScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[2])
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[4]) then return 0 end
if not redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3], 'NX') then return -1 end
local exp = tonumber(ARGV[2]) + tonumber(ARGV[3])
redis.call('ZADD', KEYS[2], exp, ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 1
`)

// putState stores a new state, unless MaxOAuthStates are outstanding.
func (s *Server) putState(ctx context.Context, state string, val []byte) error {
	key := s.stateKey(state)
	res, err := putStateScript.Run(ctx, s.cfg.Redis, []string{key, s.statesKey()},
		val, s.now().UnixMilli(), s.cfg.StateTTL.Milliseconds(), s.cfg.MaxOAuthStates, key).Int()
	switch {
	case err != nil:
		return err
	case res == 0:
		return errTooManyStates
	case res < 0:
		return errors.New("state collision")
	}
	return nil
}

// takeState atomically reads and deletes a state (GETDEL): it can be used
// once.
func (s *Server) takeState(ctx context.Context, state string) (*oauthState, error) {
	key := s.stateKey(state)
	var get *redis.StringCmd
	_, err := s.cfg.Redis.TxPipelined(ctx, func(p redis.Pipeliner) error {
		get = p.GetDel(ctx, key)
		p.ZRem(ctx, s.statesKey(), key)
		return nil
	})
	if errors.Is(err, redis.Nil) {
		return nil, errStateUnknown
	}
	if err != nil {
		return nil, err
	}
	raw, _ := get.Bytes()
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
	// A reconnect binds only the workspace the connection belongs to; a
	// connection that does not know its workspace cannot be reconnected
	// (the start refuses it too; this covers an import in between). A
	// flow started for a new id must still find it free.
	refuseGrant := func() {
		// The new grant is not kept. It is revoked only when its workspace
		// is certainly not connected here: not the connection's own (or
		// unknown) workspace, nor connected under its "ws-" id. Revoking
		// a grant of a connected workspace could end that connection's
		// grant too.
		if existing != nil && (existing.Meta[MetaWorkspaceID] == "" || existing.Meta[MetaWorkspaceID] == ex.WorkspaceID) {
			return
		}
		if _, err := s.store.Get(ctx, WorkspaceConnectionID(ex.WorkspaceID)); errors.Is(err, tokens.ErrNotFound) {
			s.revokeBestEffort(ctx, connID, ex.AccessToken)
		}
	}
	switch {
	case st.Reauth && existing == nil:
		refuseGrant()
		return fail(http.StatusConflict, OAuthStoreFailed, "Connection not found",
			"The connection to reconnect no longer exists. Ask your administrator.")
	case st.Reauth && existing.Meta[MetaWorkspaceID] == "":
		s.log.Warn("control: reconnect refused: the connection's workspace is not known", zap.String("conn_id", connID))
		refuseGrant()
		return fail(http.StatusConflict, OAuthWorkspaceMismatch, "This connection cannot be reconnected yet",
			"notionsync does not know which Notion workspace this connection belongs to. Ask your administrator.")
	case !st.Reauth && st.ConnectionID != "" && existing != nil:
		s.log.Warn("control: a new connection's id was taken while its flow ran", zap.String("conn_id", connID))
		refuseGrant()
		return fail(http.StatusConflict, OAuthStoreFailed, "Connection id taken",
			"A connection with this id was created meanwhile. Ask your administrator.")
	}
	if existing != nil {
		if ws := existing.Meta[MetaWorkspaceID]; ws != "" && ws != ex.WorkspaceID {
			s.log.Warn("control: re-authorization with a different workspace refused",
				zap.String("conn_id", connID), zap.String("stored_workspace_id", ws), zap.String("workspace_id", ex.WorkspaceID))
			refuseGrant()
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
	_, err = s.store.Connect(ctx, connID, &ex.Grant, s.cfg.Timing, tokens.ConnectOptions{Meta: meta, ExpectLinkNonce: st.LinkNonce})
	if errors.Is(err, tokens.ErrLinkNonceChanged) {
		s.log.Warn("control: reconnect refused: the link was spent by another connect meanwhile", zap.String("conn_id", connID))
		refuseGrant()
		return fail(http.StatusConflict, OAuthBadState, "This link was already used",
			"The connection was reconnected meanwhile, so this link no longer works. Ask your administrator for a new link if needed.")
	}
	if err != nil {
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
