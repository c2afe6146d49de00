package jobs

import (
	"context"
	"encoding/json"
	"time"

	"github.com/redis/go-redis/v9"
)

// RecordErrorForTest records a per-object error as the handlers do (the
// default key prefix).
func RecordErrorForTest(ctx context.Context, rdb redis.UniversalClient, conn, id string, kind ErrorKind, msg string, now time.Time) error {
	return (&state{rdb: rdb, prefix: "notionsync:"}).setError(ctx, conn, id, kind, msg, now)
}

// QueueTodoForTest puts pageIDs on conn's to-do list and pending set, as a
// sweep does, with the drain flag taken for drainID: a drain task the test
// enqueues under that id owns the list.
func QueueTodoForTest(ctx context.Context, rdb redis.UniversalClient, conn, drainID string, pageIDs []string, now time.Time) error {
	s := &state{rdb: rdb, prefix: "notionsync:", claimTTL: time.Minute}
	members := make([]string, len(pageIDs))
	items := make([]todoItem, len(pageIDs))
	for i, id := range pageIDs {
		members[i], items[i] = "page:"+id, todoItem{ID: id, DiscoveredAt: now.UnixMilli()}
	}
	_, err := s.enqueueTodo(ctx, conn, drainID, members, items, now)
	return err
}

// DBCursorForTest returns the row cursor of database or data source dbID
// (zero: none).
func DBCursorForTest(ctx context.Context, rdb redis.UniversalClient, conn, dbID string) (time.Time, error) {
	return (&state{rdb: rdb, prefix: "notionsync:"}).dbCursor(ctx, conn, dbID)
}

// PlanForTest returns the task type and payload h hands out for a search
// result raw ("" when none).
func PlanForTest(ctx context.Context, h *Handlers, conn string, raw json.RawMessage) (string, any, error) {
	head, err := parseHead(raw)
	if err != nil {
		return "", nil, err
	}
	f, ok, err := h.plan(ctx, conn, 0, head)
	if err != nil || !ok {
		return "", nil, err
	}
	return f.typ, f.load, nil
}

// testKeys names keys under the default prefix, as the handlers do.
var testKeys = &state{prefix: "notionsync:"}

// LeasesKeyForTest is the lease index shard that holds conn's leases.
func LeasesKeyForTest(conn string) string { return testKeys.leasesKey(conn) }

// TreeKeyForTest is the block-walk checkpoint of a page of conn.
func TreeKeyForTest(conn, page string) string { return testKeys.treeKey(conn, page) }

// ConnPrefixForTest is the prefix of conn's keys (its shard's).
func ConnPrefixForTest(conn string) string { return testKeys.cp(conn) }

// MarkDoneForTest records member as stored (pages of them) like a task
// that has written them to the sink.
func MarkDoneForTest(ctx context.Context, h *Handlers, conn, member string, pages int) error {
	return h.markDone(ctx, conn, member, pages)
}
