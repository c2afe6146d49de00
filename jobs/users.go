package jobs

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/notionsync/notionsync/sync/sink"
)

// DefaultUsersInterval is how often a connection's users are listed again
// (Config.UsersInterval).
const DefaultUsersInterval = time.Hour

// usersObject is the per-object error key of a connection's user listing.
const usersObject = "users"

// usersDueScript claims a connection's user listing when the last claim is
// at least ARGV[2] ms older than ARGV[1] (now, ms): it returns the previous
// claim ("" for none) and sets the new one, or returns false. Comparing
// stored times, rather than a key TTL, keeps the interval on the handlers'
// clock and lets a failed listing give its claim back.
var usersDueScript = redis.NewScript(`
local last = redis.call('GET', KEYS[1])
if last and tonumber(ARGV[1]) - tonumber(last) < tonumber(ARGV[2]) then return false end
redis.call('SET', KEYS[1], ARGV[1])
return last or ''
`)

func (s *state) usersKey(conn string) string { return s.key(conn) + ":users" }

// usersEvery is the interval of the user listing, or 0 when the handlers
// do not list users (the sink cannot store them, or UsersInterval < 0).
func (h *Handlers) usersEvery() time.Duration {
	if _, ok := h.cfg.Sink.(sink.UserStore); !ok || h.cfg.UsersInterval < 0 {
		return 0
	}
	return h.cfg.UsersInterval
}

// syncUsersClaimed lists the connection's users into the sink when its
// UsersInterval has passed since the last listing: the sweep claims the
// listing (usersDueScript) in its first round trip (beginSweep) and calls
// it once it did (prev: the claim it replaced, "" none; now: the claim's
// time). The sweep calls it before its search, so the pages a first sync
// stores already render people and mentions by name, and a connection's
// users follow it at the sweep's pace without a task or a schedule of
// their own: at 100 users per request, an hourly listing adds one request
// per hour to an unchanged workspace's sweeps, and no round trip.
//
// It never fails the sweep: a transient failure (rate limit, 5xx, a
// stopped connection) gives the claim back, so the next sweep tries again;
// and so does an answer whose body does not parse; a permanent answer (403
// for an integration without the user-information capability, 400, 404, a
// user object that is not one, a repeated cursor) keeps it and is recorded as the connection's
// per-object error "users", so it is tried again one interval later.
func (h *Handlers) syncUsersClaimed(ctx context.Context, log *zap.Logger, conn, prev string, now time.Time) {
	store := h.cfg.Sink.(sink.UserStore)
	n, err := h.syncUsers(ctx, conn, store, now)
	switch {
	case err == nil:
		log.Debug("users synced", zap.Int("users", n))
		if cerr := h.state.clearError(ctx, conn, usersObject); cerr != nil {
			log.Warn("could not clear the users error", zap.Error(cerr))
		}
	case !errors.Is(err, errUsersUnreadable) && (permanentAnswer(err, false) || errors.Is(err, ErrMalformed) || capped(err)):
		h.objectError(ctx, conn, usersObject, ErrorPermanent, err)
	default:
		log.Info("users not synced; the next sweep tries again", zap.Error(err))
		give := context.WithoutCancel(ctx)
		if prev == "" {
			err = h.cfg.Redis.Del(give, h.state.usersKey(conn)).Err()
		} else {
			err = h.cfg.Redis.Set(give, h.state.usersKey(conn), prev, 0).Err()
		}
		if err != nil {
			log.Warn("could not give the user listing's claim back", zap.Error(err))
		}
	}
}

// errUsersUnreadable marks a users listing whose body did not parse: a
// transient failure (the next sweep lists again), unlike a user object
// that is not one or a repeated cursor, which the same answer repeats.
var errUsersUnreadable = errors.New("the answer could not be read")

func capped(err error) bool {
	var ce *CapError
	return errors.As(err, &ce)
}

// syncUsers lists every user of the connection (GET /v1/users, all pages)
// and stores the listing; it returns how many users it stored. A refused
// cursor restarts the listing once.
func (h *Handlers) syncUsers(ctx context.Context, conn string, store sink.UserStore, startedAt time.Time) (int, error) {
	var (
		users     []sink.User
		cursor    string
		requests  int
		restarted bool
		seen      = map[string]bool{}
	)
	for {
		if requests >= h.cfg.MaxObjectRequests {
			return 0, &CapError{Object: "user listing", Cap: CapRequests, Limit: int64(h.cfg.MaxObjectRequests)}
		}
		path := "/v1/users?page_size=100"
		if cursor != "" {
			path += "&start_cursor=" + url.QueryEscape(cursor)
		}
		requests++
		raw, err := h.cfg.Notion.Do(ctx, conn, http.MethodGet, path, nil)
		if cursor != "" && !restarted && cursorRefused(err) {
			users, cursor, restarted, seen = nil, "", true, map[string]bool{}
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("list users: %w", err)
		}
		l, err := parseList(raw)
		if err != nil {
			// A body that does not parse (cut short, an HTML error page)
			// is an answer that a retry can fix, as for a page.
			return 0, fmt.Errorf("list users: %w (%w)", err, errUsersUnreadable)
		}
		for _, r := range l.Results {
			u, err := sink.UserFromObject(r)
			if err != nil {
				return 0, fmt.Errorf("list users: %w: %w", ErrMalformed, err)
			}
			users = append(users, u)
		}
		next := l.next()
		if next == "" {
			break
		}
		if seen[next] {
			return 0, fmt.Errorf("list users: %w: cursor %q repeated", ErrMalformed, next)
		}
		seen[next], cursor = true, next
	}
	if _, err := store.PutUsers(ctx, &sink.Users{ConnectionID: conn, Users: users, SyncedAt: startedAt}); err != nil {
		return 0, err
	}
	return len(users), nil
}
