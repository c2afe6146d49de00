package tokens

import (
	"fmt"
	"time"
)

// Token is a valid access token for one connection.
//
// Token deliberately prints without its secret: fmt verbs, zap's reflection
// encoder and JSON all see "[redacted]".
type Token struct {
	// ConnID is the connection the token belongs to.
	ConnID string
	// AccessToken is the bearer token. Never log it.
	AccessToken string
	// Version is the stored pair's version (it grows by one per write).
	Version int64
	// Expiry is when the access token stops working (zero: unknown).
	Expiry time.Time
}

// String implements fmt.Stringer without revealing the secret.
func (t Token) String() string {
	return fmt.Sprintf("Token{conn=%s v=%d expiry=%s access=[redacted]}", t.ConnID, t.Version, t.Expiry.UTC().Format(time.RFC3339))
}

// GoString implements fmt.GoStringer without revealing the secret.
func (t Token) GoString() string { return t.String() }

// MarshalJSON hides the secret from JSON encoders (including loggers).
func (t Token) MarshalJSON() ([]byte, error) {
	return fmt.Appendf(nil, `{"conn_id":%q,"version":%d,"expiry":%q}`, t.ConnID, t.Version, t.Expiry.UTC().Format(time.RFC3339Nano)), nil
}
