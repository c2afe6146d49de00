package tokens

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/notionsync/notionsync/internal/keyspace"
)

// Status is a connection's state.
type Status string

const (
	// StatusActive: tokens are refreshed and syncs run.
	StatusActive Status = "active"
	// StatusPaused: an operator paused syncs. Tokens are still refreshed
	// proactively (that keeps the grant alive), but Source.Token refuses with
	// ErrPaused so no Notion data call is made.
	StatusPaused Status = "paused"
	// StatusNeedsReauth: the grant is dead; nothing is attempted until a new
	// code exchange (Store.Connect) re-authorizes the connection.
	StatusNeedsReauth Status = "needs_reauth"
	// StatusDisconnected: disconnected by an operator; secrets deleted.
	StatusDisconnected Status = "disconnected"
)

// Event kinds recorded in a connection's timeline.
const (
	EventConnected      = "connected"
	EventReauthorized   = "reauthorized"
	EventImported       = "imported"
	EventRefreshed      = "refreshed"
	EventRefreshFailed  = "refresh_failed"
	EventNeedsReauth    = "needs_reauth"
	EventPaused         = "paused"
	EventResumed        = "resumed"
	EventDisconnected   = "disconnected"
	EventStaleWrite     = "stale_write_rejected"
	EventClientRejected = "client_rejected"
)

// Connection is a connection's stored state, without its secrets.
type Connection struct {
	ID      string
	Version int64
	Status  Status
	// Reason and Detail explain StatusNeedsReauth (and are empty otherwise).
	Reason Reason
	Detail string
	// AccessExpiry is when the access token expires (zero: no token).
	AccessExpiry time.Time
	// RefreshDue is when the token should be refreshed (before AccessExpiry,
	// by the refresh margin and a random jitter).
	RefreshDue time.Time
	// RetryAt is set after a transient refresh failure: no refresh is
	// attempted before it.
	RetryAt time.Time
	// Failures counts consecutive transient refresh failures.
	Failures    int
	CreatedAt   time.Time
	UpdatedAt   time.Time
	RefreshedAt time.Time
	// KeyID is the encryption key the stored secrets are sealed with.
	KeyID string
	// HasRefreshToken reports whether a refresh token is stored.
	HasRefreshToken bool
	// Meta is what the application stored at connect time (workspace id and
	// name, bot id, ...). Never secrets.
	Meta map[string]string
	// LinkNonce is the connection's reconnect-link nonce: a random value
	// replaced by every Connect, so a reconnect link signed over it dies when
	// the connection is (re-)connected. "" for a record written before
	// nonces existed (EnsureLinkNonce sets one). Not a secret on its own: a
	// link also needs the signing key.
	LinkNonce string
}

// Event is one entry of a connection's timeline.
type Event struct {
	Time    time.Time `json:"time"`
	Kind    string    `json:"kind"`
	Version int64     `json:"version"`
	Detail  string    `json:"detail,omitempty"`
}

// StoreConfig configures a Store.
type StoreConfig struct {
	// Redis is the client (single node or Sentinel). Required.
	Redis redis.UniversalClient
	// Keyring encrypts the token pair at rest. Required.
	Keyring *Keyring
	// KeyPrefix prefixes every Redis key. Default "notionsync:".
	KeyPrefix string
	// EventsCap is how many timeline events are kept per connection.
	// Default 50.
	EventsCap int
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Store keeps connections in Redis: one hash per connection holding the
// sealed token pair, expiry, version and status; a sorted set of connections
// ordered by refresh-due time (for the scheduler); a capped event list per
// connection; and a notification channel.
//
// Every write goes through a Lua script (see scripts.go), so a Store is safe
// for concurrent use by any number of goroutines and processes.
type Store struct {
	rdb     redis.UniversalClient
	keys    *Keyring
	prefix  string
	cap     int
	now     func() time.Time
	channel string
}

// NewStore validates cfg and returns a Store.
func NewStore(cfg StoreConfig) (*Store, error) {
	if cfg.Redis == nil {
		return nil, errors.New("tokens: StoreConfig.Redis is required")
	}
	if cfg.Keyring == nil {
		return nil, errors.New("tokens: StoreConfig.Keyring is required")
	}
	if cfg.EventsCap < 0 {
		return nil, errors.New("tokens: StoreConfig.EventsCap must not be negative")
	}
	s := &Store{
		rdb:    cfg.Redis,
		keys:   cfg.Keyring,
		prefix: cmpOr(cfg.KeyPrefix, "notionsync:"),
		cap:    cmpOr(cfg.EventsCap, 50),
		now:    cfg.Now,
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.channel = s.prefix + "token-events"
	return s, nil
}

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// Key names follow internal/keyspace: a connection's own keys and the
// shard of every index it is in carry the hash tag of the connection's
// shard, so each script names keys of one Redis Cluster slot only.
func (s *Store) connKey(id string) string { return keyspace.Conn(s.prefix, id) + "conn:" + id }
func (s *Store) eventsKey(id string) string {
	return keyspace.Conn(s.prefix, id) + "conn:" + id + ":events"
}
func (s *Store) lockKey(id string) string { return keyspace.Conn(s.prefix, id) + "lock:" + id }

// dueKey and allKey are shard i of the refresh-due and all-connections
// indexes; a connection's entries live in shard keyspace.ShardOf(id).
func (s *Store) dueKey(i int) string { return keyspace.Shard(s.prefix, i) + "due" }
func (s *Store) allKey(i int) string { return keyspace.Shard(s.prefix, i) + "connections" }

func (s *Store) scriptKeys(id string) []string {
	i := keyspace.ShardOf(id)
	return []string{s.connKey(id), s.dueKey(i), s.eventsKey(id), s.allKey(i),
		s.statusKey(i, StatusActive), s.statusKey(i, StatusPaused), s.statusKey(i, StatusNeedsReauth), s.statusKey(i, StatusDisconnected)}
}

// scriptArgs builds the ARGV prefix every script shares.
func (s *Store) scriptArgs(id string, expected int64, extra ...any) []any {
	exp := ""
	if expected >= 0 {
		exp = strconv.FormatInt(expected, 10)
	}
	args := []any{exp, s.now().UnixMilli(), s.cap, s.channel, id}
	return append(args, extra...)
}

// IDRule says in words which connection ids ValidateID accepts; every
// message that tells a user what an id may hold uses it, so the messages
// cannot drift from the check again ('.' was once promised and refused).
const IDRule = "1-128 characters of letters, digits, '_' and '-'"

// ValidateID checks that id can name a connection: 1 to 128 characters of
// [A-Za-z0-9_-] (ids become Redis keys, file names and task ids). '.' is
// refused: ids name sink directories, where "." and ".." are not names.
func ValidateID(id string) error {
	if len(id) == 0 || len(id) > 128 {
		return fmt.Errorf("tokens: connection id must be 1-128 characters, got %d", len(id))
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return fmt.Errorf("tokens: connection id %q: only [A-Za-z0-9_-] allowed", id)
		}
	}
	return nil
}

// record is a connection with its secrets, as loaded for a refresh.
type record struct {
	Connection
	access       string
	sealedAccess string
	// sealedRefresh is decrypted only when a refresh needs it, so the fast
	// path pays for one decryption.
	sealedRefresh string
	inflight      string
}

// refreshToken decrypts the stored refresh token.
func (s *Store) refreshToken(r *record) (string, error) {
	rt, err := s.keys.open(r.sealedRefresh, r.ID+"/refresh")
	if err != nil {
		return "", fmt.Errorf("connection %s refresh token: %w", r.ID, err)
	}
	return rt, nil
}

var recordFields = []string{"v", "status", "reason", "detail", "at", "rt", "exp", "due", "retry",
	"fails", "created", "updated", "refreshed", "meta", "inflight", "nonce"}

// load reads a connection record in one round trip and decrypts its access
// token (the refresh token is decrypted only when a refresh needs it).
func (s *Store) load(ctx context.Context, id string) (*record, error) {
	vals, err := s.rdb.HMGet(ctx, s.connKey(id), recordFields...).Result()
	if err != nil {
		return nil, fmt.Errorf("tokens: read connection %s: %w", id, err)
	}
	r, err := parseRecord(id, vals)
	if err != nil {
		return nil, err
	}
	if r.access, err = s.keys.open(r.sealedAccess, id+"/access"); err != nil {
		return nil, fmt.Errorf("connection %s access token: %w", id, err)
	}
	return r, nil
}

// loadMany is load for many connections in one round trip (a pipeline).
// recs[i] is nil for a connection that is missing or whose access token
// cannot be opened; only a Redis failure is an error.
func (s *Store) loadMany(ctx context.Context, ids []string) ([]*record, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.SliceCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.HMGet(ctx, s.connKey(id), recordFields...)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("tokens: read %d connections: %w", len(ids), err)
	}
	recs := make([]*record, len(ids))
	for i, id := range ids {
		r, err := parseRecord(id, cmds[i].Val())
		if err != nil {
			continue
		}
		if r.access, err = s.keys.open(r.sealedAccess, id+"/access"); err != nil {
			continue
		}
		recs[i] = r
	}
	return recs, nil
}

// parseRecord decodes an HMGET of recordFields; secrets stay sealed.
func parseRecord(id string, vals []any) (*record, error) {
	str := func(i int) string {
		v, _ := vals[i].(string)
		return v
	}
	if str(0) == "" {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	ms := func(i int) time.Time {
		n, _ := strconv.ParseInt(str(i), 10, 64)
		if n <= 0 {
			return time.Time{}
		}
		return time.UnixMilli(n)
	}
	r := &record{inflight: str(14), sealedAccess: str(4), sealedRefresh: str(5)}
	r.ID = id
	r.Version, _ = strconv.ParseInt(str(0), 10, 64)
	r.Status = Status(str(1))
	r.Reason = Reason(str(2))
	r.Detail = str(3)
	r.AccessExpiry = ms(6)
	r.RefreshDue = ms(7)
	r.RetryAt = ms(8)
	r.Failures, _ = strconv.Atoi(str(9))
	r.CreatedAt, r.UpdatedAt, r.RefreshedAt = ms(10), ms(11), ms(12)
	r.KeyID = keyID(str(4))
	r.HasRefreshToken = str(5) != ""
	r.LinkNonce = str(15)
	if m := str(13); m != "" {
		if err := json.Unmarshal([]byte(m), &r.Meta); err != nil {
			return nil, fmt.Errorf("tokens: connection %s: malformed metadata: %w", id, err)
		}
	}
	return r, nil
}

func (r *record) token() Token {
	return Token{ConnID: r.ID, AccessToken: r.access, Version: r.Version, Expiry: r.AccessExpiry}
}

// Get returns a connection's state without its secrets (nothing is
// decrypted).
func (s *Store) Get(ctx context.Context, id string) (*Connection, error) {
	vals, err := s.rdb.HMGet(ctx, s.connKey(id), recordFields...).Result()
	if err != nil {
		return nil, fmt.Errorf("tokens: read connection %s: %w", id, err)
	}
	r, err := parseRecord(id, vals)
	if err != nil {
		return nil, err
	}
	return &r.Connection, nil
}

// GetMany is Get for many connections in one round trip (a pipeline).
// errs[i] is ErrNotFound (wrapped) for a missing connection; a Redis
// failure is returned as err.
func (s *Store) GetMany(ctx context.Context, ids []string) (conns []*Connection, errs []error, err error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.SliceCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.HMGet(ctx, s.connKey(id), recordFields...)
	}
	if len(ids) > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, nil, fmt.Errorf("tokens: read %d connections: %w", len(ids), err)
		}
	}
	conns, errs = make([]*Connection, len(ids)), make([]error, len(ids))
	for i, id := range ids {
		r, perr := parseRecord(id, cmds[i].Val())
		if perr != nil {
			errs[i] = perr
			continue
		}
		conns[i] = &r.Connection
	}
	return conns, errs, nil
}

// Timing decides expiry and refresh-due times of newly written tokens.
type Timing struct {
	// AccessTokenLifetime is assumed when the provider states no expires_in.
	// Default 1h.
	AccessTokenLifetime time.Duration
	// RefreshMargin: tokens are refreshed this long before they expire,
	// capped at half the token's lifetime. Default 10m.
	RefreshMargin time.Duration
	// RefreshJitter: a random extra of up to this much (capped at a quarter
	// of the lifetime) is taken off the due time, so tokens issued together
	// are not refreshed in lockstep. Default 2m.
	RefreshJitter time.Duration
}

func (t Timing) withDefaults() Timing {
	t.AccessTokenLifetime = cmpOr(t.AccessTokenLifetime, time.Hour)
	t.RefreshMargin = cmpOr(t.RefreshMargin, 10*time.Minute)
	t.RefreshJitter = cmpOr(t.RefreshJitter, 2*time.Minute)
	return t
}

// schedule returns the access expiry and refresh-due time of a token issued
// at now with the stated lifetime (0: unknown).
func (t Timing) schedule(now time.Time, stated time.Duration) (expiry, due time.Time) {
	life := stated
	if life <= 0 {
		life = t.AccessTokenLifetime
	}
	margin := min(t.RefreshMargin, life/2)
	jitter := min(t.RefreshJitter, life/4)
	if jitter > 0 {
		jitter = time.Duration(rand.Int64N(int64(jitter)))
	}
	expiry = now.Add(life)
	return expiry, expiry.Add(-margin - jitter)
}

// ConnectOptions describes a new grant from a code exchange or an import.
type ConnectOptions struct {
	// Meta is stored with the connection (workspace id, name, ...). Nil keeps
	// the stored metadata on re-authorization.
	Meta map[string]string
	// Imported marks the grant as imported from another system (the timeline
	// says "imported" instead of "connected").
	Imported bool
	// ExpectLinkNonce, when set, makes the write conditional on the stored
	// LinkNonce being this value (checked in the same script as the version
	// fence): a reconnect through a link commits only while the link is
	// unspent. Otherwise Connect returns ErrLinkNonceChanged.
	ExpectLinkNonce string
}

// Connect stores a fresh grant for connection id: it creates the connection,
// or re-authorizes an existing one (any status) and makes it active. It is a
// fenced write like a refresh: it retries if a concurrent writer moved the
// version, so it never loses against, nor silently overwrites, a refresh that
// commits at the same moment.
func (s *Store) Connect(ctx context.Context, id string, g *Grant, timing Timing, opts ConnectOptions) (Token, error) {
	if err := ValidateID(id); err != nil {
		return Token{}, err
	}
	if g == nil || g.AccessToken == "" {
		return Token{}, errors.New("tokens: connect: the grant has no access token")
	}
	var meta string
	if opts.Meta != nil {
		b, err := json.Marshal(opts.Meta)
		if err != nil {
			return Token{}, fmt.Errorf("tokens: connect: metadata: %w", err)
		}
		meta = string(b)
	}
	for attempt := 0; attempt < 10; attempt++ {
		cur, err := s.rdb.HGet(ctx, s.connKey(id), "v").Int64()
		if errors.Is(err, redis.Nil) {
			cur, err = 0, nil
		}
		if err != nil {
			return Token{}, fmt.Errorf("tokens: connect %s: %w", id, err)
		}
		kind := EventConnected
		switch {
		case opts.Imported:
			kind = EventImported
		case cur > 0:
			kind = EventReauthorized
		}
		tok, err := s.writePair(ctx, id, cur, "connect", g, timing.withDefaults(), kind, "", meta, opts.ExpectLinkNonce)
		if errors.Is(err, ErrVersionConflict) {
			continue
		}
		return tok, err
	}
	return Token{}, fmt.Errorf("tokens: connect %s: %w (too much contention)", id, ErrVersionConflict)
}

// writePair runs the fenced commit. For mode "refresh", an empty
// g.RefreshToken keeps the stored refresh token (invariant 4), and
// g.WorkspaceID fills in a missing MetaWorkspaceID. Mode "connect" replaces
// the link nonce; expectNonce ("" = any) must match the stored one.
func (s *Store) writePair(ctx context.Context, id string, expected int64, mode string, g *Grant, timing Timing, kind, detail, meta, expectNonce string) (Token, error) {
	now := s.now()
	expiry, due := timing.schedule(now, g.ExpiresIn)
	at, err := s.keys.seal(g.AccessToken, id+"/access")
	if err != nil {
		return Token{}, err
	}
	rt, err := s.keys.seal(g.RefreshToken, id+"/refresh")
	if err != nil {
		return Token{}, err
	}
	res, err := commitScript.Run(ctx, s.rdb, s.scriptKeys(id), s.scriptArgs(id, expected,
		mode, at, rt, expiry.UnixMilli(), due.UnixMilli(), kind, detail, meta,
		g.WorkspaceID, newLinkNonce(), expectNonce)...).Int64Slice()
	if err != nil {
		return Token{}, fmt.Errorf("tokens: write connection %s: %w", id, err)
	}
	switch res[0] {
	case 1:
		return Token{ConnID: id, AccessToken: g.AccessToken, Version: res[1], Expiry: expiry}, nil
	case -3:
		return Token{}, fmt.Errorf("%w: connection %s", ErrLinkNonceChanged, id)
	case 0:
		return Token{}, fmt.Errorf("%w: connection %s is at version %d, expected %d", ErrVersionConflict, id, res[1], expected)
	default:
		return Token{}, fmt.Errorf("%w: connection %s (missing or disconnected)", ErrNotFound, id)
	}
}

// newLinkNonce returns a fresh reconnect-link nonce (128 random bits).
func newLinkNonce() string {
	var b [16]byte
	// crypto/rand.Read never returns an error.
	_, _ = crand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// EnsureLinkNonce returns the connection's reconnect-link nonce, first
// giving it one if it has none (a record written before nonces existed).
// It does not move the version: it is no token write, so it never disturbs
// a refresh's fence. ErrNotFound when the connection does not exist.
func (s *Store) EnsureLinkNonce(ctx context.Context, id string) (string, error) {
	res, err := nonceScript.Run(ctx, s.rdb, []string{s.connKey(id)}, newLinkNonce()).Text()
	if errors.Is(err, redis.Nil) {
		return "", fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return "", fmt.Errorf("tokens: link nonce of %s: %w", id, err)
	}
	return res, nil
}

// setStatus runs statusScript; see its documentation for the arguments.
func (s *Store) setStatus(ctx context.Context, id string, expected int64, from string, to Status, reason Reason, detail, kind string, wipe bool, index string) (int64, error) {
	w := ""
	if wipe {
		w = "1"
	}
	res, err := statusScript.Run(ctx, s.rdb, s.scriptKeys(id), s.scriptArgs(id, expected,
		from, string(to), string(reason), detail, kind, w, index)...).Int64Slice()
	if err != nil {
		return 0, fmt.Errorf("tokens: update connection %s: %w", id, err)
	}
	switch res[0] {
	case 1:
		return res[1], nil
	case 0:
		return res[1], fmt.Errorf("%w: connection %s is at version %d, expected %d", ErrVersionConflict, id, res[1], expected)
	case -1:
		return res[1], fmt.Errorf("tokens: connection %s: %w", id, errWrongStatus)
	default:
		return 0, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
}

var errWrongStatus = errors.New("not allowed in its current status")

// markReauth marks the connection needs_reauth, only if its version is still
// expected (invariant 6: a loser's invalid_grant never kills a connection
// that someone else just refreshed).
func (s *Store) markReauth(ctx context.Context, id string, expected int64, reason Reason, detail string) error {
	_, err := s.setStatus(ctx, id, expected, "active,paused", StatusNeedsReauth, reason, detail, EventNeedsReauth, false, "rem")
	return err
}

// Pause stops syncs for a connection; its tokens are still kept fresh.
func (s *Store) Pause(ctx context.Context, id string) error {
	_, err := s.setStatus(ctx, id, -1, "active", StatusPaused, "", "", EventPaused, false, "")
	return err
}

// Resume undoes Pause.
func (s *Store) Resume(ctx context.Context, id string) error {
	_, err := s.setStatus(ctx, id, -1, "paused", StatusActive, "", "", EventResumed, false, "")
	return err
}

// MarkNeedsReauth lets an operator force a connection into needs_reauth.
func (s *Store) MarkNeedsReauth(ctx context.Context, id, detail string) error {
	_, err := s.setStatus(ctx, id, -1, "active,paused", StatusNeedsReauth, ReasonOperator, detail, EventNeedsReauth, false, "rem")
	return err
}

// Disconnect deletes a connection's token pair and marks it disconnected. The
// version moves, so a refresh in flight cannot write the pair back. The
// caller revokes the grant at the provider first, if it wants to. Connect
// re-activates a disconnected connection.
func (s *Store) Disconnect(ctx context.Context, id string) error {
	_, err := s.setStatus(ctx, id, -1, "", StatusDisconnected, "", "", EventDisconnected, true, "rem")
	return err
}

// beginRefresh sets the in-flight marker and returns the previous one.
func (s *Store) beginRefresh(ctx context.Context, id string, expected int64) (string, error) {
	marker := fmt.Sprintf("%d:%d", expected, s.now().UnixMilli())
	res, err := beginScript.Run(ctx, s.rdb, s.scriptKeys(id), s.scriptArgs(id, expected, marker)...).Slice()
	if err != nil {
		return "", fmt.Errorf("tokens: connection %s: %w", id, err)
	}
	if n, _ := res[0].(int64); n != 1 {
		return "", fmt.Errorf("%w: connection %s", ErrVersionConflict, id)
	}
	prev, _ := res[1].(string)
	return prev, nil
}

// markerVersion returns the version an in-flight marker was set for.
func markerVersion(marker string) (int64, bool) {
	if marker == "" {
		return 0, false
	}
	v, _, _ := strings.Cut(marker, ":")
	n, err := strconv.ParseInt(v, 10, 64)
	return n, err == nil
}

// backoff describes the delay after a failed refresh.
type backoff struct {
	base, max time.Duration
	min       time.Duration // the provider's Retry-After
}

// recordFailure counts a transient failure and returns when to retry.
func (s *Store) recordFailure(ctx context.Context, id string, expected int64, b backoff, clearMarker bool, kind, detail string) (time.Time, error) {
	clr := ""
	if clearMarker {
		clr = "1"
	}
	res, err := failScript.Run(ctx, s.rdb, s.scriptKeys(id), s.scriptArgs(id, expected,
		b.base.Milliseconds(), b.max.Milliseconds(), rand.Float64(), b.min.Milliseconds(), clr, kind, detail)...).Int64Slice()
	if err != nil {
		return time.Time{}, fmt.Errorf("tokens: connection %s: %w", id, err)
	}
	if res[0] != 1 {
		return time.Time{}, fmt.Errorf("%w: connection %s", ErrVersionConflict, id)
	}
	return time.UnixMilli(res[1]), nil
}

// Rekey re-encrypts a connection's stored pair with the keyring's primary
// key (after a key rotation), without changing its version or anything
// else. It reports whether it wrote; a record already sealed with the
// primary key, or one changed concurrently (whose writer used the primary
// key), is left alone.
func (s *Store) Rekey(ctx context.Context, id string) (bool, error) {
	r, err := s.load(ctx, id)
	if err != nil {
		return false, err
	}
	if r.KeyID == s.keys.PrimaryID() || r.access == "" && r.sealedRefresh == "" {
		return false, nil
	}
	rt, err := s.refreshToken(r)
	if err != nil {
		return false, err
	}
	at, err := s.keys.seal(r.access, id+"/access")
	if err != nil {
		return false, err
	}
	srt, err := s.keys.seal(rt, id+"/refresh")
	if err != nil {
		return false, err
	}
	res, err := rekeyScript.Run(ctx, s.rdb, s.scriptKeys(id), s.scriptArgs(id, r.Version, at, srt)...).Int64Slice()
	if err != nil {
		return false, fmt.Errorf("tokens: rekey connection %s: %w", id, err)
	}
	return res[0] == 1, nil
}

// appendEvent records an event that accompanies no state change.
func (s *Store) appendEvent(ctx context.Context, id string, version int64, kind, detail string) error {
	e, err := json.Marshal(map[string]any{"t": s.now().UnixMilli(), "k": kind, "v": version, "d": detail})
	if err != nil {
		return err
	}
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.LPush(ctx, s.eventsKey(id), e)
		p.LTrim(ctx, s.eventsKey(id), 0, int64(s.cap)-1)
		return nil
	})
	return err
}

// NotificationChannel is the Redis pub/sub channel on which every change of
// a connection is announced as "<id> <version> <event kind>" (see
// ParseNotification). Any process may subscribe, for example to send an
// outbound webhook when a connection becomes needs_reauth, whichever
// process reached that verdict.
func (s *Store) NotificationChannel() string { return s.channel }

// ParseNotification splits a message of NotificationChannel.
func ParseNotification(payload string) (connID string, version int64, kind string, ok bool) {
	parts := strings.SplitN(payload, " ", 3)
	if len(parts) != 3 {
		return "", 0, "", false
	}
	v, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return "", 0, "", false
	}
	return parts[0], v, parts[2], true
}

// notify publishes a notification for id without changing anything (for
// example when a refresher releases the lock without writing).
func (s *Store) notify(ctx context.Context, id, kind string) error {
	return s.rdb.Publish(ctx, s.channel, id+" 0 "+kind).Err()
}

// Events returns a connection's timeline, newest first.
func (s *Store) Events(ctx context.Context, id string) ([]Event, error) {
	raw, err := s.rdb.LRange(ctx, s.eventsKey(id), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("tokens: events of %s: %w", id, err)
	}
	out := make([]Event, 0, len(raw))
	for _, r := range raw {
		var e struct {
			T int64  `json:"t"`
			K string `json:"k"`
			V int64  `json:"v"`
			D string `json:"d"`
		}
		if err := json.Unmarshal([]byte(r), &e); err != nil {
			return nil, fmt.Errorf("tokens: events of %s: malformed entry: %w", id, err)
		}
		out = append(out, Event{Time: time.UnixMilli(e.T), Kind: e.K, Version: e.V, Detail: e.D})
	}
	return out, nil
}

// Due returns up to limit connection ids whose refresh is due at or before
// until, earliest first (ties by id). Its cost grows with the number
// returned and the number of shards, not with the number of connections:
// a ZRANGE BYSCORE on each shard of the due index, in one pipeline, merged.
func (s *Store) Due(ctx context.Context, until time.Time, limit int) ([]string, error) {
	es, err := s.rangeShards(ctx, s.shardKeys("due"), PageCursor{}, strconv.FormatInt(until.UnixMilli(), 10), limit)
	if err != nil {
		return nil, fmt.Errorf("tokens: due index: %w", err)
	}
	ids := make([]string, len(es))
	for i, e := range es {
		ids[i] = e.id
	}
	return ids, nil
}

// List returns up to limit connections created after the given cursor (an
// id; "" starts at the beginning), oldest first (ties by id), and the
// cursor for the next page ("" at the end). A cursor whose connection is
// not indexed starts at the beginning. A page costs O(limit + shards): the
// cursor's creation time is read from its own shard (ZSCORE), then every
// shard is read from that position and the results merged.
func (s *Store) List(ctx context.Context, after string, limit int) ([]*Connection, string, error) {
	if limit <= 0 {
		return nil, "", nil
	}
	var cur PageCursor
	if after != "" {
		score, err := s.rdb.ZScore(ctx, s.allKey(keyspace.ShardOf(after)), after).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, "", fmt.Errorf("tokens: list: %w", err)
		}
		if err == nil {
			cur = PageCursor{CreatedMs: int64(score), ID: after}
		}
	}
	es, err := s.rangeShards(ctx, s.shardKeys("connections"), cur, "+inf", limit)
	if err != nil {
		return nil, "", fmt.Errorf("tokens: list: %w", err)
	}
	ids := make([]string, len(es))
	for i, e := range es {
		ids[i] = e.id
	}
	// One pipelined read for the page, not one round trip per connection
	// (the scheduler lists a page every tick).
	conns, errs, err := s.GetMany(ctx, ids)
	if err != nil {
		return nil, "", err
	}
	out := make([]*Connection, 0, len(ids))
	for i, c := range conns {
		if errors.Is(errs[i], ErrNotFound) {
			continue
		}
		if errs[i] != nil {
			return nil, "", errs[i]
		}
		out = append(out, c)
	}
	next := ""
	if len(ids) == limit {
		next = ids[len(ids)-1]
	}
	return out, next, nil
}
