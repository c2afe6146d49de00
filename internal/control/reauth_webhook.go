package control

import (
	"bytes"
	"cmp"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/notionsync/notionsync/tokens"
)

// The outbound notification's wire format.
const (
	// EventNeedsReauth is the "event" of a needs_reauth notification.
	EventNeedsReauth = "connection.needs_reauth"
	// SignatureHeader carries "sha256=<hex HMAC-SHA256 of the body keyed
	// with ReauthWebhookConfig.Secret>".
	SignatureHeader = "X-Notionsync-Signature"
	// DeliveryHeader carries the notification id, the same on every retry
	// (receivers de-duplicate with it).
	DeliveryHeader = "X-Notionsync-Delivery"
	// EventHeader carries the event name.
	EventHeader = "X-Notionsync-Event"
)

// Defaults of ReauthWebhookConfig.
const (
	DefaultWebhookMaxAttempts    = 6
	DefaultWebhookInitialBackoff = time.Second
	DefaultWebhookMaxBackoff     = time.Minute
	DefaultWebhookAttemptTimeout = 10 * time.Second
	maxWebhookAttempts           = 20
	minWebhookSecretLen          = 16
)

// ReauthWebhookConfig configures the notification POSTed when a connection
// needs re-authorization.
type ReauthWebhookConfig struct {
	// URL receives the POST; absolute http(s). It is treated as a secret
	// (such URLs often embed a token): it is never logged. Default: unset,
	// no notifications.
	URL string
	// Secret keys the body's HMAC-SHA256 signature (SignatureHeader); at
	// least 16 characters. Required with URL.
	Secret string
	// MaxAttempts bounds the deliveries of one notification (first try
	// included), 1 to 20. Default 6.
	MaxAttempts int
	// InitialBackoff is the delay before the first retry; it doubles per
	// retry (with jitter) up to MaxBackoff. A receiver's Retry-After is
	// honoured up to MaxBackoff. Defaults 1s and 1m.
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	// AttemptTimeout bounds one delivery attempt. Default 10s.
	AttemptTimeout time.Duration
	// HTTPClient sends the requests. Redirects are never followed.
	// Default: a client with standard dial and TLS timeouts.
	HTTPClient *http.Client
}

// ReauthNotification is the JSON body of a needs_reauth notification.
type ReauthNotification struct {
	// ID identifies the notification; retries repeat it.
	ID           string        `json:"id"`
	Event        string        `json:"event"`
	ConnectionID string        `json:"connection_id"`
	Reason       tokens.Reason `json:"reason"`
	Detail       string        `json:"detail,omitempty"`
	// ReconnectURL is a signed reconnect link (a credential for this one
	// connection: hand it only to its owner): it sends the user through
	// OAuth to re-authorize the connection, bound to the same workspace. It
	// works until ReconnectExpiresAt or its first successful use. Omitted
	// when no link can be made (the connection does not know its
	// workspace: ReconnectRefused says so).
	ReconnectURL       string    `json:"reconnect_url,omitempty"`
	ReconnectExpiresAt time.Time `json:"reconnect_expires_at,omitzero"`
	ReconnectRefused   string    `json:"reconnect_refused,omitempty"`
	Time               time.Time `json:"time"`
}

// NotificationOutcome is how an outbound notification ended.
type NotificationOutcome string

const (
	NotificationDelivered NotificationOutcome = "delivered"
	NotificationFailed    NotificationOutcome = "failed"
	NotificationDropped   NotificationOutcome = "dropped"
)

// Sign returns the SignatureHeader value of body: "sha256=" followed by the
// hex HMAC-SHA256 of body keyed with secret.
func Sign(secret string, body []byte) string { return SignNotion(secret, body) }

// VerifySignature reports, in constant time, whether header is the
// SignatureHeader value of body under secret. Receivers use it.
func VerifySignature(secret string, body []byte, header string) bool {
	return verifyHMAC(secret, body, header)
}

type reauthSender struct {
	enabled bool
	cfg     ReauthWebhookConfig
	hc      *http.Client
}

func newReauthSender(c ReauthWebhookConfig) (reauthSender, error) {
	if c.URL == "" {
		return reauthSender{}, nil
	}
	var errs []error
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// Not quoted: the URL is a secret.
		errs = append(errs, errors.New("ReauthWebhook.URL must be an absolute http(s) URL"))
	}
	if len(c.Secret) < minWebhookSecretLen {
		errs = append(errs, fmt.Errorf("ReauthWebhook.Secret must be at least %d characters", minWebhookSecretLen))
	}
	if c.MaxAttempts < 0 || c.MaxAttempts > maxWebhookAttempts {
		errs = append(errs, fmt.Errorf("ReauthWebhook.MaxAttempts must be from 1 to %d (0: default)", maxWebhookAttempts))
	}
	if c.InitialBackoff < 0 || c.MaxBackoff < 0 || c.AttemptTimeout < 0 {
		errs = append(errs, errors.New("ReauthWebhook durations must not be negative"))
	}
	if len(errs) > 0 {
		return reauthSender{}, errors.Join(errs...)
	}
	c.MaxAttempts = cmp.Or(c.MaxAttempts, DefaultWebhookMaxAttempts)
	c.InitialBackoff = cmp.Or(c.InitialBackoff, DefaultWebhookInitialBackoff)
	c.MaxBackoff = max(cmp.Or(c.MaxBackoff, DefaultWebhookMaxBackoff), c.InitialBackoff)
	c.AttemptTimeout = cmp.Or(c.AttemptTimeout, DefaultWebhookAttemptTimeout)
	var hc http.Client
	if c.HTTPClient != nil {
		hc = *c.HTTPClient
	} else {
		hc.Transport = &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: c.AttemptTimeout,
			MaxIdleConnsPerHost:   2,
			IdleConnTimeout:       90 * time.Second,
		}
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return reauthSender{enabled: true, cfg: c, hc: &hc}, nil
}

// NotifyNeedsReauth POSTs a signed needs_reauth notification for the
// connection to ReauthWebhookConfig.URL, in the background, retrying
// transient failures (network errors, 408, 425, 429, 5xx) with backoff up
// to MaxAttempts. It returns at once, so it can be called from
// tokens.Hooks.OnNeedsReauth (which runs while a refresh lock is held); ctx
// is not used for cancellation: the delivery outlives the caller. Without a
// configured URL, or after Shutdown, it does nothing (the latter is logged).
//
// It is safe for concurrent use.
func (s *Server) NotifyNeedsReauth(ctx context.Context, connID string, reason tokens.Reason, detail string) {
	if !s.reauth.enabled {
		return
	}
	var idb [16]byte
	_, _ = crand.Read(idb[:])
	n := ReauthNotification{
		ID:           hex.EncodeToString(idb[:]),
		Event:        EventNeedsReauth,
		ConnectionID: connID,
		Reason:       reason,
		Detail:       detail,
		Time:         s.now().UTC(),
	}
	if !s.track() {
		s.log.Warn("control: needs_reauth notification dropped: the server is shutting down", zap.String("conn_id", connID))
		s.reportNotification(connID, NotificationDropped, 0)
		return
	}
	go func() {
		defer s.inflight.Done()
		// Minting reads Redis, so it runs here, not in the caller.
		ctx, cancel := context.WithTimeout(s.deliveries, s.reauth.cfg.AttemptTimeout)
		l, err := s.MintReconnectLink(ctx, connID, 0)
		cancel()
		switch {
		case err == nil:
			n.ReconnectURL, n.ReconnectExpiresAt = l.URL, l.ExpiresAt
		case errors.Is(err, ErrWorkspaceUnknown):
			n.ReconnectRefused = "the connection does not know its Notion workspace (imported without it); " +
				"an administrator must import it again with meta workspace_id"
		default:
			// The notification still goes out: the receiver can ask an
			// administrator for a link.
			s.log.Warn("control: needs_reauth notification without a reconnect link", zap.String("conn_id", connID), zap.Error(err))
		}
		body, err := json.Marshal(n)
		if err != nil {
			s.log.Error("control: encode the needs_reauth notification", zap.String("conn_id", connID), zap.Error(err))
			s.reportNotification(connID, NotificationFailed, 0)
			return
		}
		s.deliver(connID, n.ID, body)
	}()
}

func (s *Server) reportNotification(connID string, o NotificationOutcome, attempts int) {
	if f := s.hooks.OnReauthNotification; f != nil {
		f(connID, o, attempts)
	}
}

// deliver sends one notification with retries.
func (s *Server) deliver(connID, id string, body []byte) {
	c := s.reauth.cfg
	sig := Sign(c.Secret, body)
	backoff := c.InitialBackoff
	for attempt := 1; ; attempt++ {
		retryAfter, retryable, err := s.postOnce(id, body, sig)
		if err == nil {
			s.log.Info("control: needs_reauth notification delivered", zap.String("conn_id", connID),
				zap.String("delivery", id), zap.Int("attempts", attempt))
			s.reportNotification(connID, NotificationDelivered, attempt)
			return
		}
		if !retryable || attempt >= c.MaxAttempts {
			s.log.Error("control: needs_reauth notification failed", zap.String("conn_id", connID),
				zap.String("delivery", id), zap.Int("attempts", attempt), zap.Bool("retryable", retryable), zap.Error(err))
			s.reportNotification(connID, NotificationFailed, attempt)
			return
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		if retryAfter > wait {
			wait = min(retryAfter, c.MaxBackoff)
		}
		s.log.Warn("control: needs_reauth notification attempt failed; will retry", zap.String("conn_id", connID),
			zap.String("delivery", id), zap.Int("attempt", attempt), zap.Duration("retry_in", wait), zap.Error(err))
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-s.deliveries.Done():
			t.Stop()
			s.log.Error("control: needs_reauth notification abandoned at shutdown", zap.String("conn_id", connID),
				zap.String("delivery", id), zap.Int("attempts", attempt))
			s.reportNotification(connID, NotificationDropped, attempt)
			return
		}
		backoff = min(backoff*2, c.MaxBackoff)
	}
}

// deliveryError is a failed attempt; its text never contains the URL.
type deliveryError struct {
	status int
	err    error
}

func (e *deliveryError) Error() string {
	if e.status != 0 {
		return "receiver answered HTTP " + strconv.Itoa(e.status)
	}
	return "request failed: " + e.err.Error()
}

func (e *deliveryError) Unwrap() error { return e.err }

// postOnce makes one attempt. It returns the receiver's Retry-After and
// whether a failure may be retried.
func (s *Server) postOnce(id string, body []byte, sig string) (time.Duration, bool, error) {
	ctx, cancel := context.WithTimeout(s.deliveries, s.reauth.cfg.AttemptTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.reauth.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return 0, false, &deliveryError{err: errors.New("invalid request")}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "notionsync-control")
	req.Header.Set(SignatureHeader, sig)
	req.Header.Set(DeliveryHeader, id)
	req.Header.Set(EventHeader, EventNeedsReauth)
	resp, err := s.reauth.hc.Do(req)
	if err != nil {
		// *url.Error quotes the URL, which is a secret: keep only its cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, true, &deliveryError{err: err}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		return 0, false, nil
	case code == http.StatusRequestTimeout, code == http.StatusTooEarly, code == http.StatusTooManyRequests, code >= 500:
		var after time.Duration
		if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && secs > 0 {
			after = time.Duration(min(secs, 3600)) * time.Second
		}
		return after, true, &deliveryError{status: code}
	default:
		return 0, false, &deliveryError{status: code}
	}
}
