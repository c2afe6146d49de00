package pgsink

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"
	"gocloud.dev/blob"

	"github.com/notionsync/notionsync/sync/sink/record"
)

// Options configures a Sink. The zero value is usable.
type Options struct {
	// Logger receives migration and debug messages. Default: no logging.
	Logger *zap.Logger
	// Now is the clock used when a write has no SyncedAt or a deletion no
	// time. Default: time.Now.
	Now func() time.Time
	// MaxConns bounds the connections the sink opens. It takes precedence
	// over a pool_max_conns parameter in the DSN. Default: 4.
	MaxConns int
	// Schema puts the tables in this PostgreSQL schema (created if needed).
	// Default: the connection's search_path (normally "public").
	Schema string
	// BlobURL opens the blob store that holds downloaded files' bytes
	// (gocloud.dev/blob URL: file:///dir here; s3://, gs:// and azblob://
	// when the binary registers those drivers). Default: none, and the
	// sink stores no files (FilesEnabled is false).
	BlobURL string
}

// defaultMaxConns is the pool size when Options.MaxConns is zero.
const defaultMaxConns = 4

// Sink stores objects in PostgreSQL. See the package doc.
type Sink struct {
	pool   *pgxpool.Pool
	closed atomic.Bool // set by Close before the pool closes
	log    *zap.Logger
	now    func() time.Time
	schema string
	bucket *blob.Bucket // nil: no files (Options.BlobURL)
}

// Open connects to the database at dsn (a postgres:// URL or a key=value
// connection string), applies pending migrations and returns the sink.
// Pool parameters in the DSN (pool_max_conn_lifetime, pool_max_conn_idle_time,
// ...) are honoured, except pool_max_conns: Options.MaxConns decides.
func Open(ctx context.Context, dsn string, opts Options) (*Sink, error) {
	if opts.MaxConns < 0 || opts.MaxConns > math.MaxInt32 {
		return nil, fmt.Errorf("pgsink: MaxConns %d out of range", opts.MaxConns)
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx's error may quote the DSN, password included: do not wrap it.
		return nil, errors.New("pgsink: invalid connection string")
	}
	cfg.MaxConns = int32(cmp.Or(opts.MaxConns, defaultMaxConns))
	if opts.Schema != "" {
		// A startup parameter: every pooled connection, including those
		// re-dialled later, has it from its first statement on.
		cfg.ConnConfig.RuntimeParams["search_path"] = pgx.Identifier{opts.Schema}.Sanitize()
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgsink: %w", err)
	}
	s := &Sink{
		pool:   pool,
		log:    cmp.Or(opts.Logger, zap.NewNop()),
		now:    opts.Now,
		schema: opts.Schema,
	}
	if s.now == nil {
		s.now = time.Now
	}
	// One dedicated connection for the whole migration: the advisory lock
	// is transaction-scoped, so the transaction must not change connection.
	err = s.withConn(ctx, func(c *pgx.Conn) error {
		_, err := migrate(ctx, c, opts.Schema, s.log)
		return err
	})
	if err != nil {
		_ = s.Close()
		return nil, err
	}
	if err := s.openBucket(ctx, opts.BlobURL); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// Close waits for calls in progress, closes every connection and makes
// later calls fail with record.ErrClosed. It is idempotent.
func (s *Sink) Close() error {
	s.closed.Store(true)
	s.pool.Close() // blocks until every acquired connection is released
	if s.bucket != nil {
		return s.bucket.Close()
	}
	return nil
}

// withConn runs fn on a pooled connection, released when fn returns (and
// discarded by the pool if fn left it broken or inside a transaction).
func (s *Sink) withConn(ctx context.Context, fn func(*pgx.Conn) error) error {
	if s.closed.Load() {
		return record.ErrClosed
	}
	c, err := s.pool.Acquire(ctx)
	if err != nil {
		// closed is set before the pool closes, so a failure caused by
		// Close is always reported as ErrClosed.
		if s.closed.Load() {
			return record.ErrClosed
		}
		if ctx.Err() != nil {
			return err
		}
		return fmt.Errorf("pgsink: connect: %w", err)
	}
	defer c.Release()
	return fn(c.Conn())
}

// accepted is the SQL form of record.Version.Supersedes for an upsert.
const accepted = `(excluded.version_edited_at, excluded.version_observed_at) >= (p.version_edited_at, p.version_observed_at)`

// clearsUnshared is the SQL form of record.ClearsUnshared.
const clearsUnshared = `(p.unshared_at IS NOT NULL AND excluded.synced_at > p.unshared_at)`

// ifAccepted sets each column to the incoming value when the change is
// accepted and keeps it otherwise.
func ifAccepted(cols ...string) string {
	parts := make([]string, len(cols))
	for i, c := range cols {
		parts[i] = fmt.Sprintf("%s = CASE WHEN %s THEN excluded.%s ELSE p.%s END", c, accepted, c, c)
	}
	return strings.Join(parts, ",\n\t")
}

// upsertTail is the common end of the page and database upserts: tombstone,
// unshared and version columns, the WHERE that rejects older versions, and
// RETURNING whether the content was written. editedParam and syncedParam
// are the placeholders of LastEditedTime and SyncedAt.
func upsertTail(editedParam, syncedParam string) string {
	return `,
	deleted_at = CASE WHEN ` + accepted + `
		THEN CASE WHEN excluded.deleted_at IS NULL THEN NULL ELSE COALESCE(p.deleted_at, excluded.deleted_at) END
		ELSE p.deleted_at END,
	deleted_reason = CASE WHEN ` + accepted + ` THEN excluded.deleted_reason ELSE p.deleted_reason END,
	unshared_at = CASE WHEN ` + clearsUnshared + ` THEN NULL ELSE p.unshared_at END,
	updated_at = now()
WHERE ` + accepted + ` OR ` + clearsUnshared + `
RETURNING version_edited_at = ` + editedParam + ` AND version_observed_at = ` + syncedParam
}

// upsertPage parameters: $1 connection, $2 page, $3 parent type, $4 parent
// id, $5 database, $6 title, $7 last edited, $8 object, $9 blocks (NULL:
// keep), $10 synced at, $11 deleted at, $12 data source.
var upsertPage = `INSERT INTO pages AS p (connection_id, page_id, parent_type, parent_id, database_id, title,
	last_edited_time, properties, object, blocks, synced_at, deleted_at, deleted_reason,
	version_edited_at, version_observed_at, data_source_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb -> 'properties', $8, $9, $10, $11,
	CASE WHEN $11::timestamptz IS NULL THEN NULL ELSE 'trashed' END, $7, $10, $12)
ON CONFLICT (connection_id, page_id) DO UPDATE SET
	` + ifAccepted("parent_type", "parent_id", "database_id", "data_source_id", "title", "last_edited_time",
	"properties", "object", "synced_at", "version_edited_at", "version_observed_at") + `,
	blocks = CASE WHEN ` + accepted + ` THEN COALESCE(excluded.blocks, p.blocks) ELSE p.blocks END` +
	upsertTail("$7", "$10")

// upsertDatabase parameters: $1 connection, $2 database, $3 parent type, $4
// parent id, $5 title, $6 last edited, $7 object, $8 synced at, $9 deleted
// at.
var upsertDatabase = `INSERT INTO databases AS p (connection_id, database_id, parent_type, parent_id, title,
	last_edited_time, schema, object, synced_at, deleted_at, deleted_reason, version_edited_at, version_observed_at)
VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb -> 'properties', $7, $8, $9,
	CASE WHEN $9::timestamptz IS NULL THEN NULL ELSE 'trashed' END, $6, $8)
ON CONFLICT (connection_id, database_id) DO UPDATE SET
	` + ifAccepted("parent_type", "parent_id", "title", "last_edited_time",
	"schema", "object", "synced_at", "version_edited_at", "version_observed_at") +
	upsertTail("$6", "$8")

// upsertDataSource parameters: $1 connection, $2 data source, $3 database,
// $4 title, $5 last edited, $6 object, $7 synced at, $8 deleted at.
var upsertDataSource = `INSERT INTO data_sources AS p (connection_id, data_source_id, database_id, title,
	last_edited_time, schema, object, synced_at, deleted_at, deleted_reason, version_edited_at, version_observed_at)
VALUES ($1, $2, $3, $4, $5, $6::jsonb -> 'properties', $6, $7, $8,
	CASE WHEN $8::timestamptz IS NULL THEN NULL ELSE 'trashed' END, $5, $7)
ON CONFLICT (connection_id, data_source_id) DO UPDATE SET
	` + ifAccepted("database_id", "title", "last_edited_time",
	"schema", "object", "synced_at", "version_edited_at", "version_observed_at") +
	upsertTail("$5", "$7")

// adoptLegacyRows gives the rows of a database stored without a data
// source (synced with Notion-Version 2022-06-28, before migration 2) the
// database's sole data source. Only data_source_id changes: the rows'
// versions stay, so a later sync overwrites them as usual.
const adoptLegacyRows = `UPDATE pages SET data_source_id = $3, updated_at = now()
WHERE connection_id = $1 AND database_id = $2 AND data_source_id IS NULL`

// nullable returns nil (SQL NULL) for the empty string.
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

// PutPage stores p unless the stored version is newer (see package record),
// returning whether p was stored.
func (s *Sink) PutPage(ctx context.Context, p *record.Page) (bool, error) {
	np, err := p.Normalized(s.now())
	if err != nil {
		return false, err
	}
	var blocks []byte // nil: keep the stored tree (archived page without blocks)
	if !(np.Archived && len(np.Blocks) == 0) {
		if blocks, err = record.AppendBlocks(nil, np.Blocks); err != nil {
			return false, fmt.Errorf("page %s: %w", np.ID, err)
		}
		blocks = sanitizeJSON(blocks)
	}
	var deletedAt any
	if np.Archived {
		deletedAt = np.LastEditedTime
	}
	var refs func(*pgx.Conn) error
	if !np.Archived {
		// The page's file references (the sync metadata of Page.Files):
		// the object column keeps Notion's raw URLs. A tombstone's
		// references are dead (CollectFiles skips them); they are kept,
		// so that a restore finds its files.
		refs = func(c *pgx.Conn) error { return putRefs(ctx, c, np.ConnectionID, np.ID, np.Files) }
	}
	written, err := s.upsertThen(ctx, upsertPage, record.KindPage, np.ID, refs,
		np.ConnectionID, np.ID, nullable(sanitizeText(np.ParentType)), nullable(sanitizeText(np.ParentID)),
		nullable(np.DatabaseID), sanitizeText(np.Title), np.LastEditedTime, sanitizeJSON(np.Object),
		blocks, np.SyncedAt, deletedAt, nullable(np.DataSourceID))
	return written, err
}

// PutDatabase stores d unless the stored version is newer, returning
// whether d was stored.
func (s *Sink) PutDatabase(ctx context.Context, d *record.Database) (bool, error) {
	nd, err := d.Normalized(s.now())
	if err != nil {
		return false, err
	}
	var deletedAt any
	if nd.Archived {
		deletedAt = nd.LastEditedTime
	}
	return s.upsertThen(ctx, upsertDatabase, record.KindDatabase, nd.ID,
		func(c *pgx.Conn) error { return putRefs(ctx, c, nd.ConnectionID, nd.ID, nd.Files) },
		nd.ConnectionID, nd.ID, nullable(sanitizeText(nd.ParentType)), nullable(sanitizeText(nd.ParentID)),
		sanitizeText(nd.Title), nd.LastEditedTime, sanitizeJSON(nd.Object), nd.SyncedAt, deletedAt)
}

// PutDataSource stores d unless the stored version is newer, returning
// whether d was stored. With d.SoleSource, the database's rows stored
// without a data source get this one (see record.DataSource.SoleSource).
func (s *Sink) PutDataSource(ctx context.Context, d *record.DataSource) (bool, error) {
	nd, err := d.Normalized(s.now())
	if err != nil {
		return false, err
	}
	var deletedAt any
	if nd.Archived {
		deletedAt = nd.LastEditedTime
	}
	var schema json.RawMessage // in Notion's order, for the view's columns
	if fields, err := record.ObjectFields(nd.Object); err == nil {
		schema = sanitizeJSON(record.Lookup(fields, "properties"))
	}
	var written bool
	err = s.withConn(ctx, func(c *pgx.Conn) error {
		// The schema and its view change in one transaction: a reader
		// never sees a view that disagrees with the stored schema.
		return pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
			err := tx.QueryRow(ctx, upsertDataSource, nd.ConnectionID, nd.ID, nd.DatabaseID,
				sanitizeText(nd.Title), nd.LastEditedTime, sanitizeJSON(nd.Object), nd.SyncedAt, deletedAt).Scan(&written)
			if errors.Is(err, pgx.ErrNoRows) {
				s.log.Debug("pgsink: older version rejected", zap.String("kind", string(record.KindDataSource)), zap.String("id", nd.ID))
				written = false
				return nil
			}
			if err != nil {
				return err
			}
			if !written {
				return nil
			}
			if err := syncView(ctx, tx, nd.ConnectionID, nd.ID, schema); err != nil {
				return fmt.Errorf("view: %w", err)
			}
			return putRefs(ctx, tx.Conn(), nd.ConnectionID, nd.ID, nd.Files)
		})
	})
	if err != nil {
		return false, fmt.Errorf("pgsink: put %s %s: %w", record.KindDataSource, nd.ID, err)
	}
	if !nd.SoleSource {
		return written, err
	}
	err = s.withConn(ctx, func(c *pgx.Conn) error {
		_, err := c.Exec(ctx, adoptLegacyRows, nd.ConnectionID, nd.DatabaseID, nd.ID)
		return err
	})
	if err != nil {
		return written, fmt.Errorf("pgsink: put data source %s: assigning it to the database's earlier rows: %w", nd.ID, err)
	}
	return written, nil
}

func (s *Sink) upsert(ctx context.Context, sql string, kind record.Kind, id string, args ...any) (bool, error) {
	return s.upsertThen(ctx, sql, kind, id, nil, args...)
}

// upsertThen is upsert, then, when the object was written, after on the
// same connection (its file references).
func (s *Sink) upsertThen(ctx context.Context, sql string, kind record.Kind, id string, after func(*pgx.Conn) error, args ...any) (bool, error) {
	var written bool
	err := s.withConn(ctx, func(c *pgx.Conn) error {
		err := c.QueryRow(ctx, sql, args...).Scan(&written)
		if errors.Is(err, pgx.ErrNoRows) {
			s.log.Debug("pgsink: older version rejected", zap.String("kind", string(kind)), zap.String("id", id))
			written = false
			return nil
		}
		if err != nil || !written || after == nil {
			return err
		}
		return after(c)
	})
	if err != nil {
		return false, fmt.Errorf("pgsink: put %s %s: %w", kind, id, err)
	}
	return written, nil
}

// DeletePage records that the page was deleted at at (zero: now): a
// tombstone that keeps the last stored content.
func (s *Sink) DeletePage(ctx context.Context, connectionID, pageID string, at time.Time) error {
	return s.delete(ctx, record.KindPage, connectionID, pageID, at)
}

// DeleteDatabase records that the database was deleted at at (zero: now).
func (s *Sink) DeleteDatabase(ctx context.Context, connectionID, databaseID string, at time.Time) error {
	return s.delete(ctx, record.KindDatabase, connectionID, databaseID, at)
}

// DeleteDataSource records that the data source was deleted at at (zero:
// now).
func (s *Sink) DeleteDataSource(ctx context.Context, connectionID, dataSourceID string, at time.Time) error {
	if err := s.delete(ctx, record.KindDataSource, connectionID, dataSourceID, at); err != nil {
		return err
	}
	id, err := validate(connectionID, record.KindDataSource, dataSourceID)
	if err != nil {
		return err
	}
	// The tombstone is stored: the view goes (a stale deletion leaves the
	// data source live, and syncView then re-creates the same view).
	err = s.withConn(ctx, func(c *pgx.Conn) error {
		return pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
			return syncView(ctx, tx, connectionID, id, nil)
		})
	})
	if err != nil {
		return fmt.Errorf("pgsink: delete data source %s: view: %w", id, err)
	}
	return nil
}

func table(kind record.Kind) (name, idCol string) {
	switch kind {
	case record.KindDatabase:
		return "databases", "database_id"
	case record.KindDataSource:
		return "data_sources", "data_source_id"
	}
	return "pages", "page_id"
}

func validate(conn string, kind record.Kind, id string) (string, error) {
	if err := record.ValidateConnectionID(conn); err != nil {
		return "", err
	}
	if kind != record.KindPage && kind != record.KindDatabase && kind != record.KindDataSource {
		return "", fmt.Errorf("pgsink: unknown object kind %q", kind)
	}
	n, err := record.NormalizeID(id)
	if err != nil {
		return "", fmt.Errorf("%s id: %w", kind, err)
	}
	return n, nil
}

func (s *Sink) delete(ctx context.Context, kind record.Kind, conn, rawID string, at time.Time) error {
	id, err := validate(conn, kind, rawID)
	if err != nil {
		return err
	}
	if at.IsZero() {
		at = s.now()
	}
	v := record.TombstoneVersion(at)
	tbl, idCol := table(kind)
	sql := `INSERT INTO ` + tbl + ` AS p (connection_id, ` + idCol + `, deleted_at, version_edited_at, version_observed_at)
VALUES ($1, $2, $3, $4, $3)
ON CONFLICT (connection_id, ` + idCol + `) DO UPDATE SET
	deleted_at = COALESCE(p.deleted_at, excluded.deleted_at),
	version_edited_at = excluded.version_edited_at,
	version_observed_at = excluded.version_observed_at,
	updated_at = now()
WHERE ` + accepted
	err = s.withConn(ctx, func(c *pgx.Conn) error {
		_, err := c.Exec(ctx, sql, conn, id, v.ObservedAt, v.EditedAt)
		return err
	})
	if err != nil {
		return fmt.Errorf("pgsink: delete %s %s: %w", kind, id, err)
	}
	return nil
}

// tombstoneSQL marks a stored object deleted for a reason, with the
// version the confirming GET gives it (record.ConfirmedTombstoneVersion,
// computed here from the stored version). $1 connection, $2 id, $3 at,
// $4 reason. Rows observed after $3 are left alone.
const tombstoneSQL = `UPDATE %[1]s AS p SET
	deleted_at = COALESCE(p.deleted_at, $3),
	deleted_reason = $4,
	unshared_at = CASE WHEN $4 = 'unshared' THEN COALESCE(p.unshared_at, $3) ELSE p.unshared_at END,
	version_observed_at = $3,
	updated_at = now()
WHERE connection_id = $1 AND %[2]s = $2 AND p.version_observed_at <= $3`

// Tombstone records that a direct GET at at confirmed the object gone for
// reason (see sink.Sink): the row keeps its content and is marked deleted
// with the reason; its version becomes the stored edit time observed at
// at, so a later fetch restores it. Objects not stored are ignored.
func (s *Sink) Tombstone(ctx context.Context, connectionID string, kind record.Kind, objectID string, reason record.Reason, at time.Time) error {
	id, err := validate(connectionID, kind, objectID)
	if err != nil {
		return err
	}
	if !record.ValidReason(reason) {
		return fmt.Errorf("pgsink: tombstone of %s %s: unknown reason %q", kind, id, reason)
	}
	if at.IsZero() {
		at = s.now()
	}
	at = record.NormalizeTime(at)
	tbl, idCol := table(kind)
	err = s.withConn(ctx, func(c *pgx.Conn) error {
		_, err := c.Exec(ctx, fmt.Sprintf(tombstoneSQL, tbl, idCol), connectionID, id, at, string(reason))
		return err
	})
	if err != nil {
		return fmt.Errorf("pgsink: tombstone %s %s: %w", kind, id, err)
	}
	return nil
}

// listBatch is how many rows one query of List reads: fn runs between
// queries, with no database connection held.
const listBatch = 1000

// List calls fn with the id and state of each object of kind stored for
// the connection, in id order, reading listBatch rows per query.
func (s *Sink) List(ctx context.Context, connectionID string, kind record.Kind, fn func(id string, st record.State) error) error {
	if err := record.ValidateConnectionID(connectionID); err != nil {
		return err
	}
	if kind != record.KindPage && kind != record.KindDatabase && kind != record.KindDataSource {
		return fmt.Errorf("pgsink: unknown object kind %q", kind)
	}
	tbl, idCol := table(kind)
	q := `SELECT ` + idCol + `::text, ` + stateColumns + ` FROM ` + tbl + `
WHERE connection_id = $1 AND ` + idCol + ` > $2::uuid ORDER BY ` + idCol + ` LIMIT ` + fmt.Sprint(listBatch)
	after := "00000000-0000-0000-0000-000000000000"
	first := true
	for {
		type row struct {
			id string
			st record.State
		}
		var batch []row
		err := s.withConn(ctx, func(c *pgx.Conn) error {
			// The nil uuid itself is a valid id: the first query includes it.
			op := q
			if first {
				op = strings.Replace(q, "> $2::uuid", ">= $2::uuid", 1)
			}
			rows, err := c.Query(ctx, op, connectionID, after)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var r row
				var st stateScan
				if err := rows.Scan(append([]any{&r.id}, st.dest()...)...); err != nil {
					return err
				}
				r.st = st.state()
				batch = append(batch, r)
			}
			return rows.Err()
		})
		if err != nil {
			return fmt.Errorf("pgsink: list %s: %w", kind, err)
		}
		first = false
		for _, r := range batch {
			if err := fn(r.id, r.st); err != nil {
				return err
			}
		}
		if len(batch) < listBatch {
			return nil
		}
		after = batch[len(batch)-1].id
	}
}

const markUnshared = `WITH pg AS (
	UPDATE pages SET unshared_at = $3, updated_at = now()
	WHERE connection_id = $1 AND page_id = $2 AND unshared_at IS NULL AND (synced_at IS NULL OR synced_at <= $3)
	RETURNING 1
), db AS (
	UPDATE databases SET unshared_at = $3, updated_at = now()
	WHERE connection_id = $1 AND database_id = $2 AND unshared_at IS NULL AND (synced_at IS NULL OR synced_at <= $3)
	RETURNING 1
), ds AS (
	UPDATE data_sources SET unshared_at = $3, updated_at = now()
	WHERE connection_id = $1 AND data_source_id = $2 AND unshared_at IS NULL AND (synced_at IS NULL OR synced_at <= $3)
	RETURNING 1
)
SELECT (SELECT count(*) FROM pg) + (SELECT count(*) FROM db) + (SELECT count(*) FROM ds)`

// MarkUnshared records that Notion answered 404 for the object at at (zero:
// now). It marks the stored page, database or data source with that id; an
// object the sink does not hold is ignored.
func (s *Sink) MarkUnshared(ctx context.Context, connectionID, objectID string, at time.Time) error {
	id, err := validate(connectionID, record.KindPage, objectID)
	if err != nil {
		return err
	}
	if at.IsZero() {
		at = s.now()
	}
	at = record.NormalizeTime(at)
	err = s.withConn(ctx, func(c *pgx.Conn) error {
		var n int64
		return c.QueryRow(ctx, markUnshared, connectionID, id, at).Scan(&n)
	})
	if err != nil {
		return fmt.Errorf("pgsink: mark unshared %s: %w", id, err)
	}
	return nil
}

// stateColumns are scanned by scanState, in this order.
const stateColumns = `version_edited_at, version_observed_at, last_edited_time, synced_at, deleted_at, unshared_at, deleted_reason`

type stateScan struct {
	versionEdited, versionObserved     time.Time
	lastEdited, synced, deleted, unshd *time.Time
	reason                             *string
}

func (st *stateScan) dest() []any {
	return []any{&st.versionEdited, &st.versionObserved, &st.lastEdited, &st.synced, &st.deleted, &st.unshd, &st.reason}
}

func utc(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

func (st *stateScan) state() record.State {
	return record.State{
		Version:        record.Version{EditedAt: st.versionEdited.UTC(), ObservedAt: st.versionObserved.UTC()},
		LastEditedTime: utc(st.lastEdited),
		SyncedAt:       utc(st.synced),
		DeletedAt:      utc(st.deleted),
		UnsharedAt:     utc(st.unshd),
		DeletedReason:  record.Reason(deref(st.reason)),
	}
}

// Stat returns the stored state of an object, or record.ErrNotFound.
func (s *Sink) Stat(ctx context.Context, connectionID string, kind record.Kind, objectID string) (record.State, error) {
	id, err := validate(connectionID, kind, objectID)
	if err != nil {
		return record.State{}, err
	}
	tbl, idCol := table(kind)
	var st stateScan
	err = s.withConn(ctx, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, `SELECT `+stateColumns+` FROM `+tbl+` WHERE connection_id = $1 AND `+idCol+` = $2`,
			connectionID, id).Scan(st.dest()...)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return record.State{}, fmt.Errorf("%s %s: %w", kind, id, record.ErrNotFound)
	}
	if err != nil {
		return record.State{}, fmt.Errorf("pgsink: stat %s %s: %w", kind, id, err)
	}
	return st.state(), nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// GetPage returns the stored page and its state. Object and Blocks are the
// stored JSON (jsonb: semantically what Notion returned, not byte for byte).
// For a bare tombstone they are nil.
func (s *Sink) GetPage(ctx context.Context, connectionID, pageID string) (*record.Page, record.State, error) {
	id, err := validate(connectionID, record.KindPage, pageID)
	if err != nil {
		return nil, record.State{}, err
	}
	var (
		st                             stateScan
		parentType, parentID, database *string
		dataSource                     *string
		title                          string
		object, blocks                 []byte
	)
	err = s.withConn(ctx, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, `SELECT parent_type, parent_id, database_id::text, data_source_id::text, title, object, blocks, `+stateColumns+`
FROM pages WHERE connection_id = $1 AND page_id = $2`, connectionID, id).
			Scan(append([]any{&parentType, &parentID, &database, &dataSource, &title, &object, &blocks}, st.dest()...)...)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, record.State{}, fmt.Errorf("page %s: %w", id, record.ErrNotFound)
	}
	if err != nil {
		return nil, record.State{}, fmt.Errorf("pgsink: get page %s: %w", id, err)
	}
	state := st.state()
	p := &record.Page{
		ConnectionID: connectionID, ID: id, ParentType: deref(parentType), ParentID: deref(parentID),
		DatabaseID: deref(database), DataSourceID: deref(dataSource), LastEditedTime: state.LastEditedTime, Archived: state.Deleted(),
		Title: title, SyncedAt: state.SyncedAt,
	}
	if object != nil {
		p.Object = json.RawMessage(object)
	}
	if p.Blocks, err = record.DecodeBlocks(blocks); err != nil {
		return nil, record.State{}, err
	}
	return p, state, nil
}

// GetDatabase returns the stored database and its state.
func (s *Sink) GetDatabase(ctx context.Context, connectionID, databaseID string) (*record.Database, record.State, error) {
	id, err := validate(connectionID, record.KindDatabase, databaseID)
	if err != nil {
		return nil, record.State{}, err
	}
	var (
		st                   stateScan
		parentType, parentID *string
		title                string
		object               []byte
	)
	err = s.withConn(ctx, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, `SELECT parent_type, parent_id, title, object, `+stateColumns+`
FROM databases WHERE connection_id = $1 AND database_id = $2`, connectionID, id).
			Scan(append([]any{&parentType, &parentID, &title, &object}, st.dest()...)...)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, record.State{}, fmt.Errorf("database %s: %w", id, record.ErrNotFound)
	}
	if err != nil {
		return nil, record.State{}, fmt.Errorf("pgsink: get database %s: %w", id, err)
	}
	state := st.state()
	d := &record.Database{
		ConnectionID: connectionID, ID: id, ParentType: deref(parentType), ParentID: deref(parentID),
		Title: title, LastEditedTime: state.LastEditedTime, Archived: state.Deleted(), SyncedAt: state.SyncedAt,
	}
	if object != nil {
		d.Object = json.RawMessage(object)
	}
	return d, state, nil
}

// GetDataSource returns the stored data source and its state.
func (s *Sink) GetDataSource(ctx context.Context, connectionID, dataSourceID string) (*record.DataSource, record.State, error) {
	id, err := validate(connectionID, record.KindDataSource, dataSourceID)
	if err != nil {
		return nil, record.State{}, err
	}
	var (
		st       stateScan
		database *string
		title    string
		object   []byte
	)
	err = s.withConn(ctx, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, `SELECT database_id::text, title, object, `+stateColumns+`
FROM data_sources WHERE connection_id = $1 AND data_source_id = $2`, connectionID, id).
			Scan(append([]any{&database, &title, &object}, st.dest()...)...)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, record.State{}, fmt.Errorf("data source %s: %w", id, record.ErrNotFound)
	}
	if err != nil {
		return nil, record.State{}, fmt.Errorf("pgsink: get data source %s: %w", id, err)
	}
	state := st.state()
	d := &record.DataSource{
		ConnectionID: connectionID, ID: id, DatabaseID: deref(database),
		Title: title, LastEditedTime: state.LastEditedTime, Archived: state.Deleted(), SyncedAt: state.SyncedAt,
	}
	if object != nil {
		d.Object = json.RawMessage(object)
	}
	return d, state, nil
}
