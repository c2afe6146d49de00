package pgsink

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/notionsync/notionsync/sync/sink/record"
)

// PutUsers replaces the connection's users with a complete listing, unless
// a listing synced later is stored (written false), in one transaction:
// the user_listings row serializes concurrent writers of one connection.
// Users the table holds that the listing lacks get removed_at.
func (s *Sink) PutUsers(ctx context.Context, u *record.Users) (written bool, err error) {
	nu, err := u.Normalized(s.now())
	if err != nil {
		return false, err
	}
	err = s.withConn(ctx, func(c *pgx.Conn) error {
		tx, err := c.Begin(ctx)
		if err != nil {
			return err
		}
		defer func() { _ = tx.Rollback(ctx) }()
		err = tx.QueryRow(ctx, `INSERT INTO user_listings AS l (connection_id, synced_at) VALUES ($1, $2)
ON CONFLICT (connection_id) DO UPDATE SET synced_at = excluded.synced_at
WHERE l.synced_at <= excluded.synced_at
RETURNING true`, nu.ConnectionID, nu.SyncedAt).Scan(&written)
		if errors.Is(err, pgx.ErrNoRows) {
			written = false
			return nil // a later listing is stored
		}
		if err != nil {
			return err
		}
		var b pgx.Batch
		for i, usr := range nu.Users {
			b.Queue(`INSERT INTO users AS u (connection_id, user_id, type, name, avatar_url, email, object,
	position, synced_at, removed_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL)
ON CONFLICT (connection_id, user_id) DO UPDATE SET
	type = excluded.type, name = excluded.name, avatar_url = excluded.avatar_url, email = excluded.email,
	object = excluded.object, position = excluded.position, synced_at = excluded.synced_at,
	removed_at = NULL, updated_at = now()`,
				nu.ConnectionID, usr.ID, nullable(sanitizeText(usr.Type)), nullable(sanitizeText(usr.Name)),
				nullable(sanitizeText(usr.AvatarURL)), nullable(sanitizeText(usr.Email)), sanitizeJSON(usr.Object),
				i, nu.SyncedAt)
		}
		b.Queue(`UPDATE users SET removed_at = $2, updated_at = now()
WHERE connection_id = $1 AND synced_at < $2 AND removed_at IS NULL`, nu.ConnectionID, nu.SyncedAt)
		if err := tx.SendBatch(ctx, &b).Close(); err != nil {
			return err
		}
		return tx.Commit(ctx)
	})
	if err != nil {
		return false, fmt.Errorf("pgsink: put users of %s: %w", nu.ConnectionID, err)
	}
	return written, nil
}

// GetUsers returns the connection's users: listed ones in the latest
// listing's order, then removed ones, or ErrNotFound.
func (s *Sink) GetUsers(ctx context.Context, connectionID string) (*record.Users, error) {
	if err := record.ValidateConnectionID(connectionID); err != nil {
		return nil, err
	}
	out := &record.Users{ConnectionID: connectionID}
	err := s.withConn(ctx, func(c *pgx.Conn) error {
		var synced time.Time
		err := c.QueryRow(ctx, `SELECT synced_at FROM user_listings WHERE connection_id = $1`, connectionID).Scan(&synced)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("users of %s: %w", connectionID, record.ErrNotFound)
		}
		if err != nil {
			return err
		}
		out.SyncedAt = synced.UTC()
		rows, err := c.Query(ctx, `SELECT user_id::text, coalesce(type, ''), coalesce(name, ''), coalesce(avatar_url, ''),
	coalesce(email, ''), object, removed_at
FROM users WHERE connection_id = $1
ORDER BY removed_at IS NOT NULL, position, user_id`, connectionID)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				u       record.User
				removed *time.Time
				obj     []byte
			)
			if err := rows.Scan(&u.ID, &u.Type, &u.Name, &u.AvatarURL, &u.Email, &obj, &removed); err != nil {
				return err
			}
			u.Object = obj
			if removed != nil {
				u.RemovedAt = removed.UTC()
			}
			out.Users = append(out.Users, u)
		}
		return rows.Err()
	})
	if err != nil {
		if errors.Is(err, record.ErrNotFound) || errors.Is(err, record.ErrClosed) {
			return nil, err
		}
		return nil, fmt.Errorf("pgsink: get users of %s: %w", connectionID, err)
	}
	return out, nil
}
