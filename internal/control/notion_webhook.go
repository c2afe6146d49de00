package control

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/notionsync/notionsync/internal/keyspace"
	"github.com/notionsync/notionsync/tokens"
)

// maxWebhookBody bounds an inbound Notion webhook body.
const maxWebhookBody = 1 << 20

// verificationTTL is how long a captured verification token can be revealed.
const verificationTTL = time.Hour

// WebhookOutcome is how an inbound Notion webhook request ended.
type WebhookOutcome string

const (
	WebhookBadSignature      WebhookOutcome = "bad_signature" // missing or wrong X-Notion-Signature
	WebhookTooLarge          WebhookOutcome = "too_large"
	WebhookMalformed         WebhookOutcome = "malformed"
	WebhookVerification      WebhookOutcome = "verification" // the one-time verification request
	WebhookIgnored           WebhookOutcome = "ignored"      // an event type that needs no sync
	WebhookUnknownConnection WebhookOutcome = "unknown_connection"
	WebhookInactive          WebhookOutcome = "inactive_connection" // paused, needs_reauth or disconnected
	WebhookEnqueued          WebhookOutcome = "enqueued"
	WebhookDeduplicated      WebhookOutcome = "deduplicated"
	WebhookFailed            WebhookOutcome = "failed" // Redis or the queue failed; Notion retries
	// WebhookVerificationRefused: an (unsigned) verification request while
	// a verification token is configured; it could only replace the token
	// the operator already trusts.
	WebhookVerificationRefused WebhookOutcome = "verification_refused"
	// WebhookDuplicateEvent: an event id already handled within
	// WebhookEventMaxAge (a Notion retry or a replay); answered 200 so a
	// retry stops, and nothing is enqueued.
	WebhookDuplicateEvent WebhookOutcome = "duplicate_event"
	// WebhookStale: an event whose timestamp is older than
	// WebhookEventMaxAge (or further ahead than maxWebhookClockSkew).
	WebhookStale WebhookOutcome = "stale"
)

// maxWebhookClockSkew is how far in the future an event's timestamp may be
// (Notion's clock against ours). The event-id de-duplication keeps ids for
// WebhookEventMaxAge plus this, so every event the age check lets through
// is still remembered when it is replayed.
const maxWebhookClockSkew = 5 * time.Minute

// notionWebhook is the part of a Notion webhook body the server uses.
type notionWebhook struct {
	// VerificationToken is set on the one-time verification request only.
	VerificationToken string
	ID                string
	Type              string
	WorkspaceID       string
	EntityID          string
	EntityType        string
	// Timestamp is when the event happened (zero when the body has none).
	Timestamp time.Time
}

// parseNotionWebhook parses a webhook body: a JSON object that is either the
// verification request {"verification_token": ".."} or an event
// {id, type, workspace_id, entity: {id, type}, ...}. Identifiers are checked
// for shape, since they end up in Redis keys and logs.
func parseNotionWebhook(body []byte) (notionWebhook, error) {
	var raw struct {
		VerificationToken *string `json:"verification_token"`
		ID                string  `json:"id"`
		Timestamp         string  `json:"timestamp"`
		Type              string  `json:"type"`
		WorkspaceID       string  `json:"workspace_id"`
		Entity            *struct {
			ID   string `json:"id"`
			Type string `json:"type"`
		} `json:"entity"`
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return notionWebhook{}, errors.New("the body is not a JSON object")
	}
	if err := json.Unmarshal(trimmed, &raw); err != nil {
		return notionWebhook{}, errors.New("the body is not a JSON object")
	}
	if raw.VerificationToken != nil {
		t := *raw.VerificationToken
		if t == "" || len(t) > 512 || strings.ContainsFunc(t, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
			return notionWebhook{}, errors.New("verification_token is empty or malformed")
		}
		if raw.Type != "" {
			return notionWebhook{}, errors.New("a verification request carries no event type")
		}
		return notionWebhook{VerificationToken: t}, nil
	}
	ev := notionWebhook{ID: raw.ID, Type: raw.Type, WorkspaceID: raw.WorkspaceID}
	if raw.Entity != nil {
		ev.EntityID, ev.EntityType = raw.Entity.ID, raw.Entity.Type
	}
	switch {
	case !isWord(ev.Type, 64, "._"):
		return notionWebhook{}, errors.New("type is missing or malformed")
	case ev.WorkspaceID != "" && !isWord(ev.WorkspaceID, 64, "-"):
		return notionWebhook{}, errors.New("workspace_id is malformed")
	case ev.EntityID != "" && !isWord(ev.EntityID, 64, "-"):
		return notionWebhook{}, errors.New("entity.id is malformed")
	case ev.EntityType != "" && !isWord(ev.EntityType, 64, "_"):
		return notionWebhook{}, errors.New("entity.type is malformed")
	case len(ev.ID) > 128:
		return notionWebhook{}, errors.New("id is too long")
	}
	if raw.Timestamp != "" {
		ts, err := time.Parse(time.RFC3339Nano, raw.Timestamp)
		if err != nil {
			return notionWebhook{}, errors.New("timestamp is not an RFC 3339 time")
		}
		ev.Timestamp = ts
	}
	return ev, nil
}

// isWord reports whether v is 1..maxLen ASCII letters, digits or runes of
// extra.
func isWord(v string, maxLen int, extra string) bool {
	if v == "" || len(v) > maxLen {
		return false
	}
	for _, r := range v {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(extra, r)) {
			return false
		}
	}
	return true
}

// syncsOn reports whether an event type signals changed content.
func syncsOn(eventType string) bool {
	for _, p := range []string{"page.", "database.", "data_source."} {
		if strings.HasPrefix(eventType, p) {
			return true
		}
	}
	return false
}

// SignNotion returns the X-Notion-Signature value of body: "sha256=" and the
// hex HMAC-SHA256 of the raw body keyed with the verification token.
func SignNotion(verificationToken string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(verificationToken))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// verifyHMAC checks a "sha256=<hex>" header against body in constant time.
func verifyHMAC(key string, body []byte, header string) bool {
	hexSig, ok := strings.CutPrefix(strings.TrimSpace(header), "sha256=")
	if !ok || key == "" {
		return false
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil || len(got) != sha256.Size {
		return false
	}
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write(body)
	return hmac.Equal(got, mac.Sum(nil))
}

func (s *Server) handleNotionWebhook(w http.ResponseWriter, r *http.Request) {
	outcome, status, msg := s.notionWebhook(w, r)
	if f := s.hooks.OnNotionWebhook; f != nil {
		f(outcome)
	}
	if status >= 400 {
		writeJSONError(w, status, string(outcome), msg)
		return
	}
	writeJSON(w, status, map[string]string{"status": string(outcome)})
}

func (s *Server) notionWebhook(w http.ResponseWriter, r *http.Request) (WebhookOutcome, int, string) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxWebhookBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return WebhookTooLarge, http.StatusRequestEntityTooLarge, "the body is larger than 1 MiB"
		}
		return WebhookMalformed, http.StatusBadRequest, "the body could not be read"
	}
	signed := false
	if sig := r.Header.Get("X-Notion-Signature"); sig != "" {
		if !verifyHMAC(s.cfg.NotionWebhookToken, body, sig) {
			s.log.Warn("control: notion webhook with a bad signature refused", zap.String("remote", r.RemoteAddr))
			return WebhookBadSignature, http.StatusUnauthorized, "bad X-Notion-Signature"
		}
		signed = true
	}
	ev, err := parseNotionWebhook(body)
	if err != nil {
		if !signed {
			return WebhookBadSignature, http.StatusUnauthorized, "X-Notion-Signature is required"
		}
		return WebhookMalformed, http.StatusBadRequest, err.Error()
	}
	// The verification request comes before anyone knows the token, so
	// it cannot be signed. Capturing it while no token is configured is
	// harmless: a forged one only makes the operator paste a wrong token,
	// which Notion then refuses. Once a token is configured, anyone could
	// otherwise replace the captured one with theirs unsigned; a new
	// subscription's token is received only while none is configured
	// (NotionWebhookSetup).
	if ev.VerificationToken != "" && s.cfg.NotionWebhookToken != "" {
		s.log.Warn("control: notion webhook verification request refused: a verification token is already configured",
			zap.String("remote", r.RemoteAddr))
		return WebhookVerificationRefused, http.StatusConflict,
			"a verification token is already configured; a new subscription's token is received only while none is configured"
	}
	if ev.VerificationToken != "" {
		if err := s.captureVerificationToken(r.Context(), ev.VerificationToken); err != nil {
			s.log.Error("control: store the notion webhook verification token", zap.Error(err))
			return WebhookFailed, http.StatusServiceUnavailable, "temporarily unavailable"
		}
		fp := sha256.Sum256([]byte(ev.VerificationToken))
		s.log.Info("control: notion webhook verification token received; an administrator can reveal it with "+
			"POST /api/v1/webhooks/notion/verification-token within the hour",
			zap.String("fingerprint", hex.EncodeToString(fp[:6])))
		return WebhookVerification, http.StatusOK, ""
	}
	if !signed {
		return WebhookBadSignature, http.StatusUnauthorized, "X-Notion-Signature is required"
	}
	if !syncsOn(ev.Type) || ev.WorkspaceID == "" {
		return WebhookIgnored, http.StatusOK, ""
	}
	// A signed event stays valid forever, so whoever sees one (a proxy log,
	// a leaked capture) could replay it: events older than
	// WebhookEventMaxAge are refused, and younger ones are handled once per
	// event id.
	if ev.ID == "" || ev.Timestamp.IsZero() {
		return WebhookMalformed, http.StatusBadRequest, "an event needs its id and timestamp"
	}
	now := s.now()
	if age := now.Sub(ev.Timestamp); age > s.cfg.WebhookEventMaxAge || age < -maxWebhookClockSkew {
		s.log.Warn("control: notion webhook event outside the accepted age refused", zap.Time("timestamp", ev.Timestamp),
			zap.Duration("max_age", s.cfg.WebhookEventMaxAge), zap.String("type", ev.Type))
		return WebhookStale, http.StatusBadRequest, fmt.Sprintf("the event's timestamp is not within the last %s", s.cfg.WebhookEventMaxAge)
	}
	key := s.eventKey(ev.ID)
	first, err := s.cfg.Redis.SetNX(r.Context(), key, "1", s.cfg.WebhookEventMaxAge+maxWebhookClockSkew).Result()
	if err != nil {
		s.log.Error("control: notion webhook: event de-duplication", zap.Error(err))
		return WebhookFailed, http.StatusServiceUnavailable, "temporarily unavailable"
	}
	if !first {
		return WebhookDuplicateEvent, http.StatusOK, ""
	}
	outcome, status, msg := s.syncForEvent(r.Context(), ev)
	if outcome == WebhookFailed {
		// Let Notion's retry of this event through.
		_ = s.cfg.Redis.Del(context.WithoutCancel(r.Context()), key).Err()
	}
	return outcome, status, msg
}

// eventKey is the de-duplication key of a Notion event id. The id is
// hashed: it is only length-checked, and it must not shape a Redis key.
func (s *Server) eventKey(eventID string) string {
	sum := sha256.Sum256([]byte(eventID))
	return s.cfg.KeyPrefix + "webhook:notion:event:" + hex.EncodeToString(sum[:16])
}

// syncForEvent enqueues a (de-duplicated) sync for every active connection
// of the event's workspace.
func (s *Server) syncForEvent(ctx context.Context, ev notionWebhook) (WebhookOutcome, int, string) {
	ids, err := s.workspaceConnections(ctx, ev.WorkspaceID)
	if err != nil {
		s.log.Error("control: notion webhook: find connections", zap.Error(err))
		return WebhookFailed, http.StatusServiceUnavailable, "temporarily unavailable"
	}
	outcome := WebhookUnknownConnection
	rank := map[WebhookOutcome]int{WebhookUnknownConnection: 0, WebhookInactive: 1, WebhookDeduplicated: 2, WebhookEnqueued: 3}
	for _, id := range ids {
		o, err := s.syncConnectionForEvent(ctx, id, ev)
		if err != nil {
			s.log.Error("control: notion webhook: enqueue sync", zap.String("conn_id", id), zap.Error(err))
			return WebhookFailed, http.StatusServiceUnavailable, "temporarily unavailable"
		}
		if rank[o] > rank[outcome] {
			outcome = o
		}
	}
	s.log.Debug("control: notion webhook", zap.String("type", ev.Type), zap.String("workspace_id", ev.WorkspaceID),
		zap.String("entity_id", ev.EntityID), zap.String("outcome", string(outcome)))
	if outcome == WebhookUnknownConnection || outcome == WebhookInactive {
		return outcome, http.StatusAccepted, ""
	}
	return outcome, http.StatusOK, ""
}

func (s *Server) syncConnectionForEvent(ctx context.Context, id string, ev notionWebhook) (WebhookOutcome, error) {
	c, err := s.store.Get(ctx, id)
	if errors.Is(err, tokens.ErrNotFound) {
		return WebhookUnknownConnection, nil
	}
	if err != nil {
		return "", err
	}
	if c.Status != tokens.StatusActive {
		return WebhookInactive, nil
	}
	if ws := c.Meta[MetaWorkspaceID]; ws != "" && ws != ev.WorkspaceID {
		return WebhookUnknownConnection, nil
	}
	entity := ev.EntityID
	if entity == "" {
		entity = "-"
	}
	key := s.dedupKey(id, entity)
	first, err := s.cfg.Redis.SetNX(ctx, key, "1", s.cfg.WebhookDedupWindow).Result()
	if err != nil {
		return "", err
	}
	if !first {
		return WebhookDeduplicated, nil
	}
	if es, ok := s.cfg.Enqueuer.(EntitySyncer); ok && ev.EntityID != "" {
		err = es.SyncEntity(ctx, id, ev.EntityType, ev.EntityID)
	} else {
		err = s.cfg.Enqueuer.SyncNow(ctx, id)
	}
	if err != nil {
		// Let Notion's retry through the de-duplication.
		_ = s.cfg.Redis.Del(context.WithoutCancel(ctx), key).Err()
		return "", err
	}
	return WebhookEnqueued, nil
}

// dedupKey is the de-duplication key of a webhook's entity for one
// connection: a key of the connection's shard (internal/keyspace), like
// every per-connection key.
func (s *Server) dedupKey(connID, entity string) string {
	return keyspace.Conn(s.cfg.KeyPrefix, connID) + "webhook:notion:dedup:" + connID + ":" + entity
}

// workspaceKey indexes the connections authorized for a workspace under ids
// of their own (reconnect links, imports with a workspace_id), so webhooks
// reach them as well as "ws-<workspace_id>".
func (s *Server) workspaceKey(workspaceID string) string {
	return s.cfg.KeyPrefix + "workspace:" + workspaceID + ":connections"
}

// indexWorkspace records that connID belongs to workspaceID (best effort:
// only webhooks depend on it, and the periodic sweep covers them).
func (s *Server) indexWorkspace(ctx context.Context, workspaceID, connID string) {
	if workspaceID == "" || connID == WorkspaceConnectionID(workspaceID) || !isWord(workspaceID, 64, "-") {
		return
	}
	if err := s.cfg.Redis.SAdd(ctx, s.workspaceKey(workspaceID), connID).Err(); err != nil {
		s.log.Warn("control: index the connection's workspace", zap.String("conn_id", connID), zap.Error(err))
	}
}

func (s *Server) workspaceConnections(ctx context.Context, workspaceID string) ([]string, error) {
	ids := []string{WorkspaceConnectionID(workspaceID)}
	more, err := s.cfg.Redis.SMembers(ctx, s.workspaceKey(workspaceID)).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	for _, id := range more {
		if tokens.ValidateID(id) == nil && id != ids[0] {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// The verification token is kept in Redis, sealed with a key derived from
// the admin token (every replica has it, Redis does not), until an
// administrator reveals it or it expires.

func (s *Server) verificationKey() string { return s.cfg.KeyPrefix + "webhook:notion:verification" }

func (s *Server) verificationAEAD() cipher.AEAD {
	key := sha256.Sum256([]byte("notionsync notion webhook verification\x00" + s.cfg.AdminToken))
	block, err := aes.NewCipher(key[:])
	if err != nil {
		panic(err) // unreachable: the key is 32 bytes
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err) // unreachable: AES has a 16-byte block
	}
	return aead
}

type sealedVerification struct {
	ReceivedAt time.Time `json:"received_at"`
	Sealed     []byte    `json:"sealed"`
}

func (s *Server) captureVerificationToken(ctx context.Context, token string) error {
	aead := s.verificationAEAD()
	nonce := make([]byte, aead.NonceSize())
	_, _ = rand.Read(nonce)
	v := sealedVerification{ReceivedAt: s.now().UTC(), Sealed: aead.Seal(nonce, nonce, []byte(token), []byte(s.verificationKey()))}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.cfg.Redis.Set(ctx, s.verificationKey(), b, verificationTTL).Err()
}

// handleVerificationToken reveals (once) the verification token Notion sent
// to the webhook endpoint, so an operator can paste it into Notion and into
// the configuration. It is a POST because reading also deletes it.
func (s *Server) handleVerificationToken(w http.ResponseWriter, r *http.Request) {
	raw, err := s.cfg.Redis.GetDel(r.Context(), s.verificationKey()).Bytes()
	if errors.Is(err, redis.Nil) {
		writeJSONError(w, http.StatusNotFound, "not_found",
			"no verification token was received in the last hour (or it was already revealed); ask Notion to resend it")
		return
	}
	if err != nil {
		s.writeError(w, r, "", err)
		return
	}
	var v sealedVerification
	aead := s.verificationAEAD()
	var plain []byte
	if err = json.Unmarshal(raw, &v); err == nil && len(v.Sealed) >= aead.NonceSize() {
		plain, err = aead.Open(nil, v.Sealed[:aead.NonceSize()], v.Sealed[aead.NonceSize():], []byte(s.verificationKey()))
	} else if err == nil {
		err = errors.New("short ciphertext")
	}
	if err != nil {
		writeJSONError(w, http.StatusNotFound, "not_found",
			"the stored verification token cannot be read (was the admin token changed?); ask Notion to resend it")
		return
	}
	s.log.Info("control: notion webhook verification token revealed to an administrator")
	writeJSON(w, http.StatusOK, map[string]any{
		"verification_token": string(plain),
		"received_at":        v.ReceivedAt,
		"next_steps": fmt.Sprintf("paste it into the Notion subscription's verify dialog, and set it as the "+
			"webhook verification token of this service (it signs every event; %s refuses events until then)", NotionWebhookPath),
	})
}
