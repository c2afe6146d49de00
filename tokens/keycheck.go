package tokens

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/notionsync/notionsync/internal/keyspace"
)

// ErrKeyUnavailable: a stored token cannot be opened with the configured
// keyring (its key id is not configured, or the key under that id is not
// the one it was sealed with). Every use of such a connection fails until
// the configuration is fixed. Returned as *KeyError.
var ErrKeyUnavailable = errors.New("tokens: a stored token cannot be opened with the configured keys")

// KeyError says which key a stored record needs. It matches
// ErrKeyUnavailable. It never carries key material or token text.
type KeyError struct {
	// KeyID is the key the record is sealed with.
	KeyID string
	// ConnID is the connection whose record could not be opened.
	ConnID string
	// Missing is true when KeyID is not in the keyring at all; false when
	// it is but does not open the record (different key material under the
	// same id, or a tampered record).
	Missing bool
}

func (e *KeyError) Error() string {
	if e.Missing {
		return fmt.Sprintf("tokens: connection %s is sealed with key id %q, which is not configured", e.ConnID, e.KeyID)
	}
	return fmt.Sprintf("tokens: connection %s cannot be opened with the configured key %q (other key material under that id, or a tampered record)", e.ConnID, e.KeyID)
}

// Is reports whether target is ErrKeyUnavailable.
func (e *KeyError) Is(target error) bool { return target == ErrKeyUnavailable }

// CheckKeys opens the stored tokens of a sample of connections, the
// perSide oldest and the perSide newest, to tell whether the keyring fits
// what is stored: the newest are sealed with the current primary key, the
// oldest are the likeliest to still need a retired one. It costs three
// pipelines (oldest, newest, records), whatever the number of
// connections. It returns nil when every sampled record opens (or there
// are none), a *KeyError for the first one that does not, or a Redis error.
func (s *Store) CheckKeys(ctx context.Context, perSide int) error {
	if perSide < 1 {
		perSide = 1
	}
	oldest, err := s.rangeShards(ctx, s.shardKeys("connections"), PageCursor{}, "+inf", perSide)
	if err != nil {
		return fmt.Errorf("tokens: check keys: %w", err)
	}
	// The newest: the perSide newest of every shard, merged.
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.ZSliceCmd, keyspace.Shards)
	for i := range cmds {
		cmds[i] = pipe.ZRangeWithScores(ctx, s.allKey(i), -int64(perSide), -1)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("tokens: check keys: %w", err)
	}
	var newest []entry
	for _, c := range cmds {
		for _, z := range c.Val() {
			id, _ := z.Member.(string)
			newest = append(newest, entry{score: int64(z.Score), id: id})
		}
	}
	slices.SortFunc(newest, compareEntries)
	newest = newest[max(0, len(newest)-perSide):]
	var ids []string
	seen := map[string]bool{}
	for _, e := range append(oldest, newest...) {
		if !seen[e.id] {
			seen[e.id] = true
			ids = append(ids, e.id)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	pipe = s.rdb.Pipeline()
	reads := make([]*redis.SliceCmd, len(ids))
	for i, id := range ids {
		reads[i] = pipe.HMGet(ctx, s.connKey(id), "at", "rt")
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("tokens: check keys: %w", err)
	}
	for i, id := range ids {
		vals := reads[i].Val()
		for j, field := range []string{"access", "refresh"} {
			sealed, _ := vals[j].(string)
			if sealed == "" {
				continue // disconnected, or no refresh token
			}
			if _, err := s.keys.open(sealed, id+"/"+field); err != nil {
				kid := keyID(sealed)
				_, configured := s.keys.aeads[kid]
				if !strings.Contains(sealed, ":") {
					kid = ""
				}
				return &KeyError{KeyID: kid, ConnID: id, Missing: !configured}
			}
		}
	}
	return nil
}
