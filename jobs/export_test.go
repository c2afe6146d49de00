package jobs

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// RecordErrorForTest records a per-object error as the handlers do (the
// default key prefix).
func RecordErrorForTest(ctx context.Context, rdb redis.UniversalClient, conn, id string, kind ErrorKind, msg string, now time.Time) error {
	return (&state{rdb: rdb, prefix: "notionsync:"}).setError(ctx, conn, id, kind, msg, now)
}

// DBCursorForTest returns the row cursor of database dbID (zero: none).
func DBCursorForTest(ctx context.Context, rdb redis.UniversalClient, conn, dbID string) (time.Time, error) {
	return (&state{rdb: rdb, prefix: "notionsync:"}).dbCursor(ctx, conn, dbID)
}
