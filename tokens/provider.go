package tokens

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Provider is everything tokens knows about an OAuth2 provider that rotates
// refresh tokens: how to spend a refresh token, and (through the error it
// returns) what a failure means.
//
// Refresh must be safe for concurrent use. It is called at most once per
// rotation for a connection (the Source guarantees that); it must honour ctx's
// deadline and must not retry on its own: retries are the Source's decision,
// because only the Source knows whether a retry may spend a token twice.
//
// Errors: return a *ProviderError whenever the provider answered or the
// outcome is known. Any other error is treated as KindOutcomeUnknown (the
// provider may have rotated the token). Errors must never contain a token.
type Provider interface {
	Refresh(ctx context.Context, refreshToken string) (*Grant, error)
}

// ProviderFunc adapts a function to the Provider interface.
type ProviderFunc func(ctx context.Context, refreshToken string) (*Grant, error)

// Refresh calls f.
func (f ProviderFunc) Refresh(ctx context.Context, refreshToken string) (*Grant, error) {
	return f(ctx, refreshToken)
}

// Grant is a successful token response.
type Grant struct {
	AccessToken string
	// RefreshToken is the rotated refresh token. Empty means the provider sent
	// none: the stored refresh token is kept (never blanked).
	RefreshToken string
	// ExpiresIn is the access token's lifetime as the provider stated it
	// (expires_in). Zero means the provider did not say; the Source then uses
	// its configured AccessTokenLifetime.
	ExpiresIn time.Duration
	// WorkspaceID is the workspace the grant belongs to, when the token
	// response names it (Notion's does, on exchange and on refresh); "" when
	// it does not. A refresh stores it in the connection's metadata
	// (MetaWorkspaceID) when the connection does not know its workspace yet
	// (an import without it), so that a reconnect can be bound to it.
	WorkspaceID string
}

// MetaWorkspaceID is the metadata key of the Notion workspace a connection
// belongs to. A refresh fills it in when it is missing (see
// Grant.WorkspaceID); it is never changed by a refresh once set.
const MetaWorkspaceID = "workspace_id"

// ErrorKind classifies a token-endpoint failure. The classification decides
// what the Source does next, so a Provider must be precise.
type ErrorKind int

const (
	// KindOutcomeUnknown: the request may have reached the provider and the
	// rotation may have happened (timeout, 5xx, connection dropped after the
	// request was written). Retried with the same refresh token, bounded.
	KindOutcomeUnknown ErrorKind = iota
	// KindNotProcessed: the provider certainly did not rotate (429, connection
	// refused, request never sent). Retried later with backoff.
	KindNotProcessed
	// KindInvalidGrant: the provider rejected the refresh token (rotated away,
	// revoked, expired). Judged after a re-read of the stored pair.
	KindInvalidGrant
	// KindInvalidClient: the provider rejected the client credentials. This is
	// an operator problem, not the connection's: the connection is not marked
	// for re-authorization (fixing the secret makes it work again).
	KindInvalidClient
	// KindPermanent: any other rejection (malformed request, unsupported
	// grant). Not retried automatically.
	KindPermanent
)

func (k ErrorKind) String() string {
	switch k {
	case KindOutcomeUnknown:
		return "outcome_unknown"
	case KindNotProcessed:
		return "not_processed"
	case KindInvalidGrant:
		return "invalid_grant"
	case KindInvalidClient:
		return "invalid_client"
	case KindPermanent:
		return "permanent"
	}
	return fmt.Sprintf("ErrorKind(%d)", int(k))
}

// ProviderError is a classified token-endpoint failure. Its text never holds a
// token.
type ProviderError struct {
	Kind ErrorKind
	// StatusCode is the HTTP status, 0 when there was no response.
	StatusCode int
	// Code is the provider's error code ("invalid_grant"), when it sent one.
	Code string
	// Description is the provider's error_description/message, with any
	// token removed by the Provider.
	Description string
	// RetryAfter is the provider's requested delay (Retry-After), if any.
	RetryAfter time.Duration
	// Err is the underlying transport error, if any.
	Err error
}

func (e *ProviderError) Error() string {
	msg := "token endpoint: " + e.Kind.String()
	if e.StatusCode != 0 {
		msg += fmt.Sprintf(" (HTTP %d", e.StatusCode)
		if e.Code != "" {
			msg += " " + e.Code
		}
		msg += ")"
	}
	if e.Description != "" {
		msg += ": " + e.Description
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *ProviderError) Unwrap() error { return e.Err }

// classify returns the kind of err as the Source sees it.
func classify(err error) (ErrorKind, *ProviderError) {
	var pe *ProviderError
	if errors.As(err, &pe) {
		return pe.Kind, pe
	}
	return KindOutcomeUnknown, nil
}
