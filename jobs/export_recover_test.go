package jobs

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// BeginSweepForTest records what a sweep that starts leaves in Redis (its
// pending entry self and its lease, for ttl) as the handlers do (the
// default key prefix; no user listing claimed): a worker that dies right
// after leaves exactly this.
func BeginSweepForTest(ctx context.Context, rdb redis.UniversalClient, conn, self string, ttl time.Duration, now time.Time) error {
	s := &state{rdb: rdb, prefix: "notionsync:", claimTTL: ttl}
	_, err := s.beginSweep(ctx, conn, self, now, 0)
	return err
}
