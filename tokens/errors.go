package tokens

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. Test with errors.Is; the typed errors below match them.
var (
	// ErrNotFound: no connection with that id.
	ErrNotFound = errors.New("tokens: connection not found")
	// ErrReauthRequired: the connection's grant is dead; a person must
	// re-authorize (a new code exchange). Returned as *ReauthError.
	ErrReauthRequired = errors.New("tokens: connection needs re-authorization")
	// ErrPaused: an operator paused the connection; no Notion calls are made
	// for it until it is resumed.
	ErrPaused = errors.New("tokens: connection is paused")
	// ErrDisconnected: the connection was disconnected and its secrets deleted.
	ErrDisconnected = errors.New("tokens: connection is disconnected")
	// ErrTransient: a refresh could not be completed now; try again later.
	// Returned as *TransientError.
	ErrTransient = errors.New("tokens: temporary failure")
	// ErrVersionConflict: a fenced write found a different version than the
	// one it started from; nothing was written.
	ErrVersionConflict = errors.New("tokens: version conflict")
	// ErrClientRejected: the provider rejected the client credentials
	// (invalid_client). An operator must fix the configuration; the
	// connection itself is not marked for re-authorization.
	ErrClientRejected = errors.New("tokens: provider rejected the client credentials")
	// ErrLinkNonceChanged: a Connect with ConnectOptions.ExpectLinkNonce
	// found another nonce: the connection was connected or re-authorized
	// since the reconnect link was made, so the link is spent. Nothing was
	// written.
	ErrLinkNonceChanged = errors.New("tokens: the connection was re-authorized since the link was made")
)

// Reason says why a connection needs re-authorization.
type Reason string

const (
	// ReasonRevoked: the provider rejected the refresh token and no rotation of
	// ours was in doubt: the user removed the integration, the grant was
	// revoked or expired, or a system outside this one spent the token (for
	// example the system a connection was imported from).
	ReasonRevoked Reason = "revoked"
	// ReasonLostRotation: a refresh whose outcome was unknown (timeout, 5xx,
	// dropped connection, or a process killed mid-refresh) was followed by
	// invalid_grant: the provider most likely rotated the token and the
	// response carrying the new one never reached storage.
	ReasonLostRotation Reason = "lost_rotation_response"
	// ReasonNoRefreshToken: the connection has no refresh token and its access
	// token expired.
	ReasonNoRefreshToken Reason = "no_refresh_token"
	// ReasonOperator: an operator marked the connection.
	ReasonOperator Reason = "operator"
)

// ReauthError is returned when a connection needs re-authorization. It
// matches ErrReauthRequired.
type ReauthError struct {
	ConnID string
	Reason Reason
	// Detail is a human-readable explanation (never a token).
	Detail string
}

func (e *ReauthError) Error() string {
	msg := fmt.Sprintf("tokens: connection %s needs re-authorization (%s)", e.ConnID, e.Reason)
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	return msg
}

// Is reports whether target is ErrReauthRequired.
func (e *ReauthError) Is(target error) bool { return target == ErrReauthRequired }

// TransientError is returned when no valid token could be produced now but a
// later attempt may succeed. It matches ErrTransient.
type TransientError struct {
	ConnID string
	// RetryAfter is the suggested delay before trying again.
	RetryAfter time.Duration
	Err        error
}

func (e *TransientError) Error() string {
	msg := fmt.Sprintf("tokens: connection %s: temporary failure, retry in %s", e.ConnID, e.RetryAfter.Round(time.Millisecond))
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Is reports whether target is ErrTransient.
func (e *TransientError) Is(target error) bool { return target == ErrTransient }

func (e *TransientError) Unwrap() error { return e.Err }

// RetryDelay returns the delay a caller should wait before retrying after err,
// and whether err is retryable at all.
func RetryDelay(err error) (time.Duration, bool) {
	var te *TransientError
	if errors.As(err, &te) {
		return te.RetryAfter, true
	}
	return 0, false
}
