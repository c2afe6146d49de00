package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/notionsync/notionsync/internal/keyspace"
	"github.com/notionsync/notionsync/tokens"
)

// reauthNotifier sends the outbound needs_reauth webhook for every
// connection that becomes needs_reauth, whichever process (a worker, most
// often) reached the verdict: it listens to the token store's notification
// channel. Every scheduler replica listens; a Redis SET NX per (connection,
// version) makes exactly one of them send.
type reauthNotifier struct {
	rdb    redis.UniversalClient
	store  *tokens.Store
	prefix string
	notify func(ctx context.Context, connID string, reason tokens.Reason, detail string)
	log    *zap.Logger
}

func (n *reauthNotifier) run(ctx context.Context) error {
	ps := n.rdb.Subscribe(ctx, n.store.NotificationChannel())
	// Receive blocks in a read that ignores ctx: closing the subscription
	// is what ends it.
	stop := context.AfterFunc(ctx, func() { _ = ps.Close() })
	defer stop()
	defer ps.Close()
	if _, err := ps.Receive(ctx); err != nil {
		return fmt.Errorf("subscribe to token notifications: %w", err)
	}
	for {
		msg, err := ps.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, redis.ErrClosed) || errors.Is(err, net.ErrClosed) {
				return nil
			}
			n.log.Warn("token notifications interrupted; needs_reauth webhooks sent meanwhile may be missed", zap.Error(err))
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
			continue
		}
		m, ok := msg.(*redis.Message)
		if !ok {
			continue
		}
		id, version, kind, ok := tokens.ParseNotification(m.Payload)
		if !ok || kind != tokens.EventNeedsReauth {
			continue
		}
		n.handle(ctx, id, version)
	}
}

func (n *reauthNotifier) handle(ctx context.Context, id string, version int64) {
	// A per-connection key, so it lives in the connection's shard
	// (internal/keyspace) like the connection's other keys.
	key := fmt.Sprintf("%sreauth-notified:%s:%d", keyspace.Conn(n.prefix, id), id, version)
	first, err := n.rdb.SetNX(ctx, key, 1, 7*24*time.Hour).Result()
	if err != nil || !first {
		return
	}
	c, err := n.store.Get(ctx, id)
	if err != nil {
		n.log.Warn("needs_reauth webhook: cannot read the connection", zap.String("conn_id", id), zap.Error(err))
		return
	}
	if c.Status != tokens.StatusNeedsReauth {
		return // already re-authorized
	}
	n.notify(ctx, id, c.Reason, c.Detail)
}
