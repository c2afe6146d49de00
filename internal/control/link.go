package control

import (
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/notionsync/notionsync/tokens"
)

// A reconnect link re-authorizes an existing connection:
//
//	<PublicURL>/oauth/start?connection_id=ID&expires=UNIX&sig=MAC
//
// MAC is HMAC-SHA256, keyed with the link key, over the purpose
// ("reconnect"), the connection id, the expiry and the connection's link
// nonce (tokens.Connection.LinkNonce). The nonce is not in the link: it is
// stored with the connection and replaced by every successful connect, so
// a link stops working once it (or any other link, or an import) has
// re-authorized the connection. The purpose keeps a MAC made for anything
// else with the same key from passing as a link.
const (
	linkPurposeReconnect = "reconnect"
	linkMACLen           = sha256.Size
)

// Defaults and bounds of reconnect links.
const (
	// DefaultLinkTTL is how long a minted reconnect link works, unless the
	// caller asks for another lifetime.
	DefaultLinkTTL = 7 * 24 * time.Hour
	// MaxLinkTTL bounds a requested lifetime.
	MaxLinkTTL = 30 * 24 * time.Hour
	// minLinkKeyLen is the shortest accepted Config.LinkKey.
	minLinkKeyLen = 32
)

// ErrWorkspaceUnknown: the connection does not know its Notion workspace
// (imported without workspace_id, and not refreshed since), so a reconnect
// could not be bound to it and is refused.
var ErrWorkspaceUnknown = errors.New("control: the connection's Notion workspace is not known yet")

// deriveLinkKey derives the link key from the admin token with HKDF-SHA256.
// The admin token already grants minting links (through the API), so the
// derived key grants nothing new; every replica has the admin token, so no
// new secret must be distributed; rotating the admin token (after a leak)
// also kills every outstanding link, which is what a leak calls for.
func deriveLinkKey(adminToken string) []byte {
	k, err := hkdf.Key(sha256.New, []byte(adminToken), nil, "notionsync reconnect-link v1", 32)
	if err != nil {
		panic(err) // unreachable: 32 bytes is far below HKDF-SHA256's limit
	}
	return k
}

// linkMAC computes the MAC of a link. The fields are joined with NUL, which
// cannot occur in any of them (ids pass tokens.ValidateID, nonces are hex).
func (s *Server) linkMAC(connID string, expires int64, nonce string) []byte {
	m := hmac.New(sha256.New, s.linkKey)
	m.Write([]byte(linkPurposeReconnect + "\x00" + connID + "\x00" + strconv.FormatInt(expires, 10) + "\x00" + nonce))
	return m.Sum(nil)
}

// ReconnectLink is a minted reconnect link.
type ReconnectLink struct {
	ConnectionID string    `json:"connection_id"`
	URL          string    `json:"url"`
	ExpiresAt    time.Time `json:"expires_at"`
}

// MintReconnectLink returns a signed reconnect link for an existing
// connection, valid for ttl (0: DefaultLinkTTL; at most MaxLinkTTL) or until
// the connection is next connected, whichever comes first. It refuses with
// ErrWorkspaceUnknown when the connection does not know its workspace, and
// tokens.ErrNotFound when it does not exist. The link is a credential: hand
// it only to the connection's owner, and never log it.
func (s *Server) MintReconnectLink(ctx context.Context, connID string, ttl time.Duration) (ReconnectLink, error) {
	if s.publicURL == "" {
		return ReconnectLink{}, errors.New("control: reconnect links need PublicURL")
	}
	if ttl < 0 || ttl > MaxLinkTTL {
		return ReconnectLink{}, fmt.Errorf("control: a link lifetime is at most %s", MaxLinkTTL)
	}
	if ttl == 0 {
		ttl = s.cfg.LinkTTL
	}
	c, err := s.store.Get(ctx, connID)
	if err != nil {
		return ReconnectLink{}, err
	}
	if c.Meta[MetaWorkspaceID] == "" {
		return ReconnectLink{}, fmt.Errorf("%w: %s", ErrWorkspaceUnknown, connID)
	}
	nonce := c.LinkNonce
	if nonce == "" {
		if nonce, err = s.store.EnsureLinkNonce(ctx, connID); err != nil {
			return ReconnectLink{}, err
		}
	}
	exp := s.now().Add(ttl).Truncate(time.Second)
	q := url.Values{}
	q.Set("connection_id", connID)
	q.Set("expires", strconv.FormatInt(exp.Unix(), 10))
	q.Set("sig", base64.RawURLEncoding.EncodeToString(s.linkMAC(connID, exp.Unix(), nonce)))
	return ReconnectLink{ConnectionID: connID, URL: s.publicURL + StartPath + "?" + q.Encode(), ExpiresAt: exp.UTC()}, nil
}

// linkParams are the link parameters of a start request.
type linkParams struct {
	expires int64
	sig     []byte
}

// parseLinkParams reads expires and sig; ok is false when either is
// missing or malformed.
func parseLinkParams(q url.Values) (linkParams, bool) {
	if len(q["expires"]) != 1 || len(q["sig"]) != 1 {
		return linkParams{}, false
	}
	exp, err := strconv.ParseInt(q.Get("expires"), 10, 64)
	if err != nil || exp <= 0 {
		return linkParams{}, false
	}
	sig, err := base64.RawURLEncoding.DecodeString(q.Get("sig"))
	if err != nil || len(sig) != linkMACLen {
		return linkParams{}, false
	}
	return linkParams{expires: exp, sig: sig}, true
}

// checkLink reports whether p is an unexpired link for c as it is stored
// now (its current nonce). The comparison is constant-time.
func (s *Server) checkLink(c *tokens.Connection, p linkParams) bool {
	want := s.linkMAC(c.ID, p.expires, c.LinkNonce)
	valid := hmac.Equal(want, p.sig) && c.LinkNonce != ""
	return valid && s.now().Unix() < p.expires
}
