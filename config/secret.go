package config

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
)

// Redacted is what a secret prints as.
const Redacted = "[redacted]"

// maskedPassword replaces a password or a credential-like query value in a
// printed URL.
const maskedPassword = "xxxxx"

// Secret is a configuration value that must never be printed: a client
// secret, an admin token, a webhook secret. Value returns the real string;
// everything else (String, GoString, Format for every verb, MarshalJSON,
// MarshalText, LogValue) shows "[redacted]", or "" when the secret is empty, so
// a dump of the configuration tells a set secret from an unset one without
// showing it.
//
// The zero Secret is empty. A Secret is immutable and safe for concurrent use.
type Secret struct{ value string }

// NewSecret wraps v.
func NewSecret(v string) Secret { return Secret{value: v} }

// Value returns the secret itself. Pass it straight to the code that needs it;
// never log or format it.
func (s Secret) Value() string { return s.value }

// IsSet reports whether the secret is non-empty.
func (s Secret) IsSet() bool { return s.value != "" }

// String returns "[redacted]", or "" when the secret is empty.
func (s Secret) String() string {
	if s.value == "" {
		return ""
	}
	return Redacted
}

// GoString is used by %#v.
func (s Secret) GoString() string { return "config.Secret(" + strconv.Quote(s.String()) + ")" }

// Format prints the redacted form for every verb and flag.
func (s Secret) Format(f fmt.State, verb rune) { formatRedacted(f, verb, s.String(), s.GoString()) }

// MarshalJSON encodes the redacted form.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// MarshalText encodes the redacted form (for encoders that use
// encoding.TextMarshaler, such as map keys or YAML).
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// LogValue makes log/slog print the redacted form.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// UnmarshalText sets the secret to text. It is how the environment is read.
func (s *Secret) UnmarshalText(text []byte) error {
	s.value = string(text)
	return nil
}

// URL is a connection URL from the environment that may carry credentials
// (NOTIONSYNC_REDIS_URL, NOTIONSYNC_SINK_URL). Value returns it as given;
// String, GoString, Format, MarshalJSON, MarshalText and LogValue show it with
// the password and the values of credential-like query parameters (password,
// secret, token, key, ...) replaced by "xxxxx", and a URL that does not parse
// as "[redacted]".
//
// The zero URL is empty. A URL is immutable and safe for concurrent use.
type URL struct{ raw string }

// NewURL wraps raw.
func NewURL(raw string) URL { return URL{raw: raw} }

// Value returns the URL as configured, credentials included.
func (u URL) Value() string { return u.raw }

// String returns the URL with its credentials masked.
func (u URL) String() string { return redactURL(u.raw) }

// GoString is used by %#v.
func (u URL) GoString() string { return "config.URL(" + strconv.Quote(u.String()) + ")" }

// Format prints the masked form for every verb and flag.
func (u URL) Format(f fmt.State, verb rune) { formatRedacted(f, verb, u.String(), u.GoString()) }

// MarshalJSON encodes the masked form.
func (u URL) MarshalJSON() ([]byte, error) { return json.Marshal(u.String()) }

// MarshalText encodes the masked form.
func (u URL) MarshalText() ([]byte, error) { return []byte(u.String()), nil }

// LogValue makes log/slog print the masked form.
func (u URL) LogValue() slog.Value { return slog.StringValue(u.String()) }

// UnmarshalText sets the URL to text; it is checked by validation, not here.
func (u *URL) UnmarshalText(text []byte) error {
	u.raw = string(text)
	return nil
}

// redactURL masks the password and credential-like query values of raw.
func redactURL(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" {
		return Redacted
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), maskedPassword)
		}
	}
	if u.RawQuery != "" {
		q, err := url.ParseQuery(u.RawQuery)
		if err != nil {
			u.RawQuery = Redacted
		} else {
			for name, values := range q {
				if credentialParam(name) {
					for i := range values {
						values[i] = maskedPassword
					}
				}
			}
			u.RawQuery = q.Encode()
		}
	}
	u.Fragment, u.RawFragment = "", ""
	return u.String()
}

// credentialParam reports whether a query parameter may carry a credential.
func credentialParam(name string) bool {
	name = strings.ToLower(name)
	for _, word := range []string{"pass", "pwd", "secret", "token", "key", "auth", "sig", "credential"} {
		if strings.Contains(name, word) {
			return true
		}
	}
	return false
}

// formatRedacted writes shown (already redacted) for verb, honouring flags
// and width; %#v writes goSyntax.
func formatRedacted(f fmt.State, verb rune, shown, goSyntax string) {
	if verb == 'v' && f.Flag('#') {
		_, _ = io.WriteString(f, goSyntax)
		return
	}
	_, _ = fmt.Fprintf(f, fmt.FormatString(f, verb), shown)
}
