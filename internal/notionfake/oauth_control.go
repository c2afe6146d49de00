package notionfake

import (
	"fmt"
	"time"
)

// This file is the test-control API of the OAuth fake: seeding, revocation
// and fault injection. Every method is safe for concurrent use.

// SeedConnection authorizes the integration in workspace workspaceID (created
// if needed; "" creates one with a random id) without going through the
// OAuth flow, and returns the new connection's tokens. A previous connection
// of that workspace is revoked, as by a re-authorization.
func (s *Server) SeedConnection(workspaceID string) Pair {
	s.mu.Lock()
	defer s.mu.Unlock()
	ws := s.workspaceLocked(workspaceID)
	c := s.connectLocked(ws)
	return Pair{
		WorkspaceID:  ws.id,
		AccessToken:  s.issueAccessLocked(c),
		RefreshToken: s.issueRefreshLocked(c),
	}
}

// IssueCode issues an authorization code bound to redirectURI, as an approved
// authorization request would: for the workspace set by SetAuthorizeWorkspace
// (Options.AuthorizeWorkspaceID), or else for a new workspace.
func (s *Server) IssueCode(redirectURI string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issueCodeLocked(s.workspaceLocked(s.authzWS), redirectURI)
}

// IssueCodeFor issues an authorization code bound to redirectURI for
// workspace workspaceID (created if needed). Exchanging it re-authorizes the
// workspace: the previous connection is revoked.
func (s *Server) IssueCodeFor(workspaceID, redirectURI string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issueCodeLocked(s.workspaceLocked(workspaceID), redirectURI)
}

// Revoke revokes the workspace's current connection, as a user removing the
// integration does: its refresh tokens get invalid_grant, its access tokens
// fail CheckAccessToken with ErrTokenRevoked. It reports whether a live
// connection was revoked.
func (s *Server) Revoke(workspaceID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	ws, ok := s.workspaces[workspaceID]
	if !ok || ws.conn == nil || ws.conn.revoked {
		return false
	}
	ws.conn.revoked = true
	s.stats.Revocations++
	return true
}

// CurrentPair returns the workspace's live refresh token and latest access
// token, as the fake sees them; ok is false when the workspace has no live
// connection.
func (s *Server) CurrentPair(workspaceID string) (p Pair, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ws, found := s.workspaces[workspaceID]
	if !found || ws.conn == nil || ws.conn.revoked {
		return Pair{}, false
	}
	c := ws.conn
	p = Pair{WorkspaceID: ws.id, RefreshToken: c.liveRefresh}
	if n := len(c.accessList); n > 0 {
		p.AccessToken = c.accessList[n-1]
	}
	return p, true
}

// SetAuthorizeWorkspace makes later authorizations (the authorize endpoint and
// IssueCode) re-authorize workspaceID; "" makes each create a new workspace.
func (s *Server) SetAuthorizeWorkspace(workspaceID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.authzWS = workspaceID
}

// DenyAuthorizations makes the authorize endpoint answer as if the user
// clicked "Cancel" (redirect with error=access_denied) while deny is true.
func (s *Server) DenyAuthorizations(deny bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.denyAuthz = deny
}

// SetErrorStyle sets the shape of later OAuth error bodies.
func (s *Server) SetErrorStyle(style ErrorStyle) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errStyle = style
}

type faultKind int

const (
	faultNone faultKind = iota
	faultRateLimit
	faultFail
)

// preFault answers a token request before it is processed.
type preFault struct {
	kind       faultKind
	status     int
	retryAfter time.Duration
}

// faults is the fault-injection state, guarded by Server.mu.
type faults struct {
	pre     []preFault // consumed one per token request, in the order queued
	dropN   int        // successful refreshes to drop after committing
	latency time.Duration
}

func (f *faults) takePre() preFault {
	if len(f.pre) == 0 {
		return preFault{}
	}
	p := f.pre[0]
	f.pre = f.pre[1:]
	return p
}

func (f *faults) takeDrop() bool {
	if f.dropN == 0 {
		return false
	}
	f.dropN--
	return true
}

// FailNext makes the next n token requests fail with status (400..599,
// typically 5xx) and a Notion-style error body, without processing them:
// nothing is rotated or exchanged. Faults queued by FailNext and
// RateLimitNext are served in the order they were queued, before any other
// processing (client authentication included). It panics on a status outside
// 400..599, a programming error in the test.
func (s *Server) FailNext(n int, status int) {
	if status < 400 || status > 599 {
		panic(fmt.Sprintf("notionfake: FailNext status %d outside 400..599", status))
	}
	s.queuePre(n, preFault{kind: faultFail, status: status})
}

// RateLimitNext makes the next n token requests answer 429 with Retry-After
// (whole seconds, rounded up) without processing them.
func (s *Server) RateLimitNext(n int, retryAfter time.Duration) {
	s.queuePre(n, preFault{kind: faultRateLimit, retryAfter: retryAfter})
}

func (s *Server) queuePre(n int, f preFault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults.pre = append(s.faults.pre, f)
	}
}

// RotateThenDropNext makes the next n successful refresh grants commit the
// rotation and then close the TCP connection without a response: the client
// cannot know its refresh token was spent. Failed refreshes and code
// exchanges do not consume these.
func (s *Server) RotateThenDropNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.dropN += n
}

// SetLatency delays every later token response by d. The request is processed
// (a rotation committed) when it arrives; only the response is late, so a
// client that gives up before d has lost a committed rotation. To hold a
// request before it is processed, use BlockRefreshWith. Zero removes the
// latency.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.latency = d
}
