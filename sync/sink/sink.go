package sink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/notionsync/notionsync/sync/sink/filesink"
	"github.com/notionsync/notionsync/sync/sink/pgsink"
	"github.com/notionsync/notionsync/sync/sink/record"
)

// Data types, re-exported from package record.
type (
	// Page is one Notion page with its block tree.
	Page = record.Page
	// Block is one block of a page's tree.
	Block = record.Block
	// Database is one Notion database (schema; rows are Pages).
	Database = record.Database
	// DataSource is one data source of a database (2025-09-03 and later).
	DataSource = record.DataSource
	// State is what a sink knows about one stored object.
	State = record.State
	// Version orders the changes applied to an object.
	Version = record.Version
	// Kind tells pages from databases.
	Kind = record.Kind
	// User is one workspace user (person or bot).
	User = record.User
	// Users is one complete listing of a connection's users.
	Users = record.Users
	// Reason says why an object is a tombstone.
	Reason = record.Reason
)

// Tombstone reasons.
const (
	ReasonTrashed    = record.ReasonTrashed
	ReasonUnshared   = record.ReasonUnshared
	ReasonRestricted = record.ReasonRestricted
)

// Object kinds.
const (
	KindPage       = record.KindPage
	KindDatabase   = record.KindDatabase
	KindDataSource = record.KindDataSource
)

// Errors; test with errors.Is.
var (
	ErrInvalidID     = record.ErrInvalidID
	ErrInvalidObject = record.ErrInvalidObject
	ErrNotFound      = record.ErrNotFound
	ErrClosed        = record.ErrClosed
	// ErrUnsupportedURL is returned by Open for a URL scheme it cannot open.
	ErrUnsupportedURL = errors.New("unsupported sink URL")
)

// Sink stores Notion objects. See the package doc for the guarantees and
// the concurrency contract shared by all implementations.
type Sink interface {
	// PutPage stores p, unless the stored version is newer; written reports
	// whether p was stored. An archived page is stored as a tombstone.
	PutPage(ctx context.Context, p *Page) (written bool, err error)
	// PutDatabase stores d, unless the stored version is newer.
	PutDatabase(ctx context.Context, d *Database) (written bool, err error)
	// PutDataSource stores d, unless the stored version is newer.
	PutDataSource(ctx context.Context, d *DataSource) (written bool, err error)
	// DeletePage records that the page was deleted at at (zero: now). The
	// stored content is kept, marked deleted; a page never stored gets a bare
	// tombstone, so that a stale copy written later is rejected.
	DeletePage(ctx context.Context, connectionID, pageID string, at time.Time) error
	// DeleteDatabase is DeletePage for databases.
	DeleteDatabase(ctx context.Context, connectionID, databaseID string, at time.Time) error
	// DeleteDataSource is DeletePage for data sources.
	DeleteDataSource(ctx context.Context, connectionID, dataSourceID string, at time.Time) error
	// MarkUnshared records that Notion answered 404 for objectID (a page, a
	// database or a data source) at at (zero: now). Objects the sink does not hold are
	// ignored.
	MarkUnshared(ctx context.Context, connectionID, objectID string, at time.Time) error
	// Tombstone records that a direct GET at at (zero: now) confirmed the
	// object of kind gone for reason: it becomes a tombstone that keeps the
	// stored content (the file sink removes a page's Markdown), with
	// State.DeletedReason set. Its version is the stored edit time observed
	// at at (record.ConfirmedTombstoneVersion): a fetch that started
	// earlier is rejected, a later one restores the object. An object the
	// sink does not hold, or holds from a fetch after at, is left alone.
	// kind is any kind the sink stores, so the call extends to new ones.
	Tombstone(ctx context.Context, connectionID string, kind Kind, objectID string, reason Reason, at time.Time) error
	// List calls fn with the id and state of each object of kind the sink
	// holds for the connection, tombstones included, in no set order. An
	// error from fn stops the listing and is returned. The reconciliation
	// compares it with what Notion shows.
	List(ctx context.Context, connectionID string, kind Kind, fn func(id string, st State) error) error
	// Stat returns the stored state of an object, or ErrNotFound. Sync jobs
	// use it to skip fetching block trees of pages that did not change.
	Stat(ctx context.Context, connectionID string, kind Kind, objectID string) (State, error)
	// Close waits for calls in progress and releases the sink's resources.
	Close() error
}

// Reader reads stored objects back. Both backends implement it; assert it
// on the Sink returned by Open.
type Reader interface {
	// GetPage returns the stored page and its state, or ErrNotFound. For a
	// bare tombstone Object and Blocks are nil.
	GetPage(ctx context.Context, connectionID, pageID string) (*Page, State, error)
	// GetDatabase returns the stored database and its state, or ErrNotFound.
	GetDatabase(ctx context.Context, connectionID, databaseID string) (*Database, State, error)
	// GetDataSource returns the stored data source and its state, or
	// ErrNotFound.
	GetDataSource(ctx context.Context, connectionID, dataSourceID string) (*DataSource, State, error)
}

// UserStore stores each connection's users (GET /v1/users), so that people
// values, created_by / last_edited_by and user mentions resolve to names.
// Both backends implement it; assert it on the Sink returned by Open.
type UserStore interface {
	// PutUsers replaces the connection's users with a complete listing,
	// unless a listing synced later is stored (written false). Users the
	// sink held that the listing lacks are kept, with RemovedAt set.
	PutUsers(ctx context.Context, users *Users) (written bool, err error)
	// GetUsers returns the connection's users (listed ones first, in
	// Notion's order, then removed ones in no particular order), or
	// ErrNotFound.
	GetUsers(ctx context.Context, connectionID string) (*Users, error)
}

// UserFromObject builds a User from a user object as Notion returned it.
func UserFromObject(object json.RawMessage) (User, error) { return record.UserFromObject(object) }

// Options configures Open. The zero value is usable.
type Options struct {
	// Logger is used by the backend unless its own options set one.
	// Default: no logging.
	Logger *zap.Logger
	// Now is the backend's clock unless its own options set one.
	// Default: time.Now.
	Now func() time.Time
	// File configures the file backend.
	File filesink.Options
	// Postgres configures the PostgreSQL backend.
	Postgres pgsink.Options
}

// Open opens the sink at url:
//
//   - file://<path> or a plain path: a directory (package filesink).
//     Everything after "file://" is the path: file:///var/lib/notionsync is
//     absolute, file://data is relative to the working directory.
//   - postgres://... or postgresql://...: a PostgreSQL database (package
//     pgsink); the schema is created or migrated before Open returns.
//
// Other schemes fail with ErrUnsupportedURL.
func Open(ctx context.Context, url string, opts Options) (Sink, error) {
	scheme, rest, hasScheme := strings.Cut(url, "://")
	if !hasScheme {
		scheme, rest = "file", url
	}
	switch strings.ToLower(scheme) {
	case "file":
		fo := opts.File
		if fo.Logger == nil {
			fo.Logger = opts.Logger
		}
		if fo.Now == nil {
			fo.Now = opts.Now
		}
		if rest == "" {
			return nil, fmt.Errorf("%w: file URL without a path", ErrUnsupportedURL)
		}
		return filesink.Open(rest, fo)
	case "postgres", "postgresql":
		po := opts.Postgres
		if po.Logger == nil {
			po.Logger = opts.Logger
		}
		if po.Now == nil {
			po.Now = opts.Now
		}
		return pgsink.Open(ctx, url, po)
	}
	// The URL may carry credentials: name only the scheme.
	return nil, fmt.Errorf("%w: scheme %q (want file, postgres or postgresql)", ErrUnsupportedURL, scheme)
}

// PageFromObject builds a Page from a page object as Notion returned it:
// id, parent, database, last_edited_time, archived/in_trash and title are
// extracted from object. A zero syncedAt means now by the sink's clock; pass
// the time the fetch started.
func PageFromObject(connectionID string, object json.RawMessage, blocks []Block, syncedAt time.Time) (*Page, error) {
	return record.PageFromObject(connectionID, object, blocks, syncedAt)
}

// DatabaseFromObject builds a Database from a database object as Notion
// returned it.
func DatabaseFromObject(connectionID string, object json.RawMessage, syncedAt time.Time) (*Database, error) {
	return record.DatabaseFromObject(connectionID, object, syncedAt)
}

// DataSourceFromObject builds a DataSource from a data source object as
// Notion returned it.
func DataSourceFromObject(connectionID string, object json.RawMessage, syncedAt time.Time) (*DataSource, error) {
	return record.DataSourceFromObject(connectionID, object, syncedAt)
}

// BlockFromRaw builds a Block (children not attached) from a block object as
// Notion returned it.
func BlockFromRaw(raw json.RawMessage) (Block, error) {
	return record.BlockFromRaw(raw)
}

// NormalizeID returns the lowercase dashed form of a Notion id, or
// ErrInvalidID.
func NormalizeID(id string) (string, error) { return record.NormalizeID(id) }
