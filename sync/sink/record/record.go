package record

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Errors returned by sinks. Test with errors.Is.
var (
	// ErrInvalidID reports an object or connection id that is not acceptable
	// (object ids must be UUIDs; connection ids [A-Za-z0-9_-]{1,128}).
	ErrInvalidID = errors.New("invalid id")
	// ErrInvalidObject reports a record that cannot be stored: Object or a
	// block's Raw is not a JSON object, LastEditedTime is missing, ...
	ErrInvalidObject = errors.New("invalid object")
	// ErrNotFound reports that the sink holds nothing for the object.
	ErrNotFound = errors.New("object not found")
	// ErrClosed reports a call on a closed sink.
	ErrClosed = errors.New("sink closed")
)

// Kind tells pages, databases and data sources apart.
type Kind string

// Object kinds.
const (
	KindPage     Kind = "page"
	KindDatabase Kind = "database"
	// KindDataSource is a data source of a database (Notion-Version
	// 2025-09-03 and later): the schema its rows follow.
	KindDataSource Kind = "data_source"
)

// Page is one Notion page (a database row is a page too) with its full block
// tree, as a sync job hands it to a sink.
type Page struct {
	// ConnectionID identifies the Notion connection (workspace authorization)
	// the page was read through. [A-Za-z0-9_-]{1,128}.
	ConnectionID string
	// ID is the Notion page id. Any UUID spelling is accepted; sinks store the
	// lowercase, dashed form.
	ID string
	// ParentType is Notion's parent.type ("workspace", "page_id",
	// "database_id", "data_source_id", "block_id"); ParentID the parent's id
	// ("" for the workspace).
	ParentType, ParentID string
	// DatabaseID is set when the page is a database row.
	DatabaseID string
	// DataSourceID is the data source the row belongs to, when Notion said
	// so (parent type "data_source_id", Notion-Version 2025-09-03 and
	// later); "" for rows read with an older version and for other pages.
	DataSourceID string
	// LastEditedTime is the page's last_edited_time (required).
	LastEditedTime time.Time
	// Archived is true when Notion reports archived or in_trash: the page is
	// stored as a tombstone (its content is kept, marked deleted). An
	// archived page written without Blocks keeps the stored block tree.
	Archived bool
	// Title is the plain text of the page's title property.
	Title string
	// Object is the page object exactly as Notion returned it (required).
	Object json.RawMessage
	// Blocks is the page's full block tree.
	Blocks []Block
	// SyncedAt is when the page was fetched from Notion: take it just before
	// the fetch starts. Zero means "now" by the sink's clock.
	SyncedAt time.Time
	// Files maps the page's Notion-hosted file references (by FileKey) to
	// the stored files; kept in the sync metadata, while Object and Blocks
	// keep Notion's URLs as returned.
	Files []FileLink
}

// Block is one block of a page's tree.
type Block struct {
	// ID and Type are the block's id and type; HasChildren its has_children.
	ID, Type    string
	HasChildren bool
	// Raw is the block object exactly as Notion returned it (without
	// children). It may be nil, in which case sinks synthesize a minimal
	// object from ID, Type and HasChildren.
	Raw json.RawMessage
	// Children are the block's children, fetched recursively.
	Children []Block
}

// Database is one Notion database (its schema, not its rows: rows are Pages).
type Database struct {
	ConnectionID string
	// ID is the Notion database id (any UUID spelling).
	ID string
	// ParentType and ParentID as for Page.
	ParentType, ParentID string
	// Title is the plain text of the database title.
	Title string
	// LastEditedTime is the database's last_edited_time (required).
	LastEditedTime time.Time
	// Archived: archived or in_trash; stored as a tombstone.
	Archived bool
	// Object is the database object exactly as Notion returned it (required).
	Object json.RawMessage
	// SyncedAt as for Page.
	SyncedAt time.Time
	// Files maps the database's Notion-hosted files (its icon and cover)
	// to the stored files, as Page.Files.
	Files []FileLink
}

// DataSource is one data source of a database (Notion-Version 2025-09-03
// and later): its schema, not its rows (rows are Pages whose DataSourceID
// names it). Under that version a Database is a container whose object
// lists its data sources ("data_sources": [{id, name}]) and holds no schema.
type DataSource struct {
	ConnectionID string
	// ID is the Notion data source id (any UUID spelling).
	ID string
	// DatabaseID is the database the data source belongs to (its parent).
	DatabaseID string
	// Title is the plain text of the data source's title.
	Title string
	// LastEditedTime is the data source's last_edited_time (required).
	LastEditedTime time.Time
	// Archived: archived or in_trash; stored as a tombstone.
	Archived bool
	// Object is the data source object exactly as Notion returned it
	// (required).
	Object json.RawMessage
	// SyncedAt as for Page.
	SyncedAt time.Time
	// SoleSource says the database has no other data source. Rows of the
	// database stored without a data source (synced with Notion-Version
	// 2022-06-28, which names none) then belong to this one, and a sink
	// that can do so cheaply (pgsink) assigns it to them; with several
	// data sources it cannot know which one such a row belongs to, and
	// the row gets its data source when it is next synced.
	SoleSource bool
	// Files maps the data source's Notion-hosted files (its icon and
	// cover) to the stored files, as Page.Files.
	Files []FileLink
}

// State is what a sink knows about one stored object.
type State struct {
	// Version of the last change applied (see the package doc).
	Version Version
	// LastEditedTime and SyncedAt of the stored content; zero for a bare
	// tombstone (an object deleted before it was ever stored).
	LastEditedTime time.Time
	SyncedAt       time.Time
	// DeletedAt is set (non-zero) for a tombstone.
	DeletedAt time.Time
	// UnsharedAt is set (non-zero) when Notion answered 404.
	UnsharedAt time.Time
	// DeletedReason says why a tombstone is one (a Reason; "" for a
	// tombstone written before reasons existed, or by DeletePage).
	DeletedReason Reason
}

// Reason says why an object became a tombstone.
type Reason string

// Tombstone reasons.
const (
	// ReasonTrashed: Notion reports the object archived or in_trash.
	ReasonTrashed Reason = "trashed"
	// ReasonUnshared: Notion answered 404 object_not_found to a direct
	// GET (the object is no longer shared with the integration, or was
	// deleted for good: Notion does not tell them apart).
	ReasonUnshared Reason = "unshared"
	// ReasonRestricted: Notion answered 403 restricted_resource to a
	// direct GET: the integration lost its capability for the object.
	ReasonRestricted Reason = "restricted"
)

// ValidReason reports whether r is one of the tombstone reasons.
func ValidReason(r Reason) bool {
	return r == ReasonTrashed || r == ReasonUnshared || r == ReasonRestricted
}

// Deleted reports whether the object is a tombstone.
func (s State) Deleted() bool { return !s.DeletedAt.IsZero() }

// Unshared reports whether the integration lost access to the object.
func (s State) Unshared() bool { return !s.UnsharedAt.IsZero() }

// HasContent reports whether an object (rather than only a tombstone) is
// stored.
func (s State) HasContent() bool { return !s.LastEditedTime.IsZero() }

// Version orders the changes applied to one object. See the package doc.
type Version struct {
	EditedAt   time.Time
	ObservedAt time.Time
}

// Compare returns -1, 0 or +1 as v is older than, equal to or newer than o.
func (v Version) Compare(o Version) int {
	if c := v.EditedAt.Compare(o.EditedAt); c != 0 {
		return c
	}
	return v.ObservedAt.Compare(o.ObservedAt)
}

// Supersedes reports whether a change with version v is applied over stored
// version o (v >= o).
func (v Version) Supersedes(o Version) bool { return v.Compare(o) >= 0 }

// String formats v for logs.
func (v Version) String() string {
	return v.EditedAt.Format(time.RFC3339Nano) + "@" + v.ObservedAt.Format(time.RFC3339Nano)
}

// TombstoneVersion is the Version of a deletion observed at at.
func TombstoneVersion(at time.Time) Version {
	at = NormalizeTime(at)
	return Version{EditedAt: at.Truncate(time.Minute), ObservedAt: at}
}

// ConfirmedTombstoneVersion is the Version of a tombstone that a direct
// GET at at confirmed over stored version v: the stored edit time, observed
// at at. A fetch that started before at is older and rejected; a later
// fetch of the same (or a newer) edit wins, so an object shared again with
// an old last_edited_time (Notion keeps it when sharing) comes back on its
// next fetch instead of staying deleted for ever. A tombstone observed
// before what is stored keeps v (the caller ignores it).
func ConfirmedTombstoneVersion(v Version, at time.Time) Version {
	at = NormalizeTime(at)
	if v.EditedAt.IsZero() {
		return TombstoneVersion(at)
	}
	return Version{EditedAt: v.EditedAt, ObservedAt: at}
}

// UnsharedApplies reports whether MarkUnshared at at changes state s.
func UnsharedApplies(s State, at time.Time) bool {
	return s.UnsharedAt.IsZero() && !NormalizeTime(at).Before(s.SyncedAt)
}

// ClearsUnshared reports whether a write fetched at syncedAt clears the
// unshared mark of s.
func ClearsUnshared(s State, syncedAt time.Time) bool {
	return !s.UnsharedAt.IsZero() && NormalizeTime(syncedAt).After(s.UnsharedAt)
}

// NormalizeTime returns t in UTC truncated to microseconds.
func NormalizeTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Microsecond)
}

// NormalizeID returns the lowercase, dashed form of a Notion id given in any
// UUID spelling (32 hex digits, with or without dashes, any case). Anything
// else fails with ErrInvalidID. The result is safe as a file name.
func NormalizeID(id string) (string, error) {
	var hex [32]byte
	n := 0
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f':
		case c >= 'A' && c <= 'F':
			c += 'a' - 'A'
		case c == '-':
			continue
		default:
			return "", fmt.Errorf("%w: %q is not a Notion id", ErrInvalidID, truncate(id))
		}
		if n == len(hex) {
			return "", fmt.Errorf("%w: %q is not a Notion id", ErrInvalidID, truncate(id))
		}
		hex[n] = c
		n++
	}
	if n != len(hex) || !dashesAt(id) {
		return "", fmt.Errorf("%w: %q is not a Notion id", ErrInvalidID, truncate(id))
	}
	var b strings.Builder
	b.Grow(36)
	for i, c := range hex {
		if i == 8 || i == 12 || i == 16 || i == 20 {
			b.WriteByte('-')
		}
		b.WriteByte(c)
	}
	return b.String(), nil
}

// dashesAt accepts ids without dashes or with dashes exactly at the UUID
// positions.
func dashesAt(id string) bool {
	if !strings.Contains(id, "-") {
		return true
	}
	if len(id) != 36 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if (id[i] == '-') != (i == 8 || i == 13 || i == 18 || i == 23) {
			return false
		}
	}
	return true
}

// ValidateConnectionID checks that id is usable as a connection id (and as a
// directory name): 1 to 128 characters of [A-Za-z0-9_-].
func ValidateConnectionID(id string) error {
	if id == "" || len(id) > 128 {
		return fmt.Errorf("%w: connection id must have 1 to 128 characters", ErrInvalidID)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return fmt.Errorf("%w: connection id %q: only [A-Za-z0-9_-] allowed", ErrInvalidID, truncate(id))
		}
	}
	return nil
}

func truncate(s string) string {
	const max = 64
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}

// normalizeOptionalID normalizes id when it is a UUID and keeps it otherwise
// (parent ids of unusual parents are data, not file names).
func normalizeOptionalID(id string) string {
	if n, err := NormalizeID(id); err == nil {
		return n
	}
	return id
}

// Normalized validates p and returns a copy with normalized ids and times.
// A zero SyncedAt becomes now. The Object and Blocks are shared, not copied.
func (p *Page) Normalized(now time.Time) (Page, error) {
	if p == nil {
		return Page{}, fmt.Errorf("%w: nil page", ErrInvalidObject)
	}
	out := *p
	if err := ValidateConnectionID(p.ConnectionID); err != nil {
		return Page{}, err
	}
	id, err := NormalizeID(p.ID)
	if err != nil {
		return Page{}, fmt.Errorf("page id: %w", err)
	}
	out.ID = id
	if p.DatabaseID != "" {
		if out.DatabaseID, err = NormalizeID(p.DatabaseID); err != nil {
			return Page{}, fmt.Errorf("page %s: database id: %w", id, err)
		}
	}
	if p.DataSourceID != "" {
		if out.DataSourceID, err = NormalizeID(p.DataSourceID); err != nil {
			return Page{}, fmt.Errorf("page %s: data source id: %w", id, err)
		}
	}
	out.ParentID = normalizeOptionalID(p.ParentID)
	if p.LastEditedTime.IsZero() {
		return Page{}, fmt.Errorf("%w: page %s: LastEditedTime is required", ErrInvalidObject, id)
	}
	out.LastEditedTime = NormalizeTime(p.LastEditedTime)
	if out.SyncedAt.IsZero() {
		out.SyncedAt = now
	}
	out.SyncedAt = NormalizeTime(out.SyncedAt)
	if !IsJSONObject(p.Object) {
		return Page{}, fmt.Errorf("%w: page %s: Object is not a JSON object", ErrInvalidObject, id)
	}
	if err := validFileLinks("page", id, p.Files); err != nil {
		return Page{}, err
	}
	return out, nil
}

// validFileLinks checks the file links of object id of kind.
func validFileLinks(kind, id string, links []FileLink) error {
	for _, l := range links {
		if !ValidFileLink(l) || l.Key == "" {
			return fmt.Errorf("%w: %s %s: file link %q: %w", ErrInvalidObject, kind, id, truncate(l.SHA256+l.Ext), ErrInvalidFile)
		}
	}
	return nil
}

// Normalized validates d and returns a copy with normalized ids and times.
func (d *Database) Normalized(now time.Time) (Database, error) {
	if d == nil {
		return Database{}, fmt.Errorf("%w: nil database", ErrInvalidObject)
	}
	out := *d
	if err := ValidateConnectionID(d.ConnectionID); err != nil {
		return Database{}, err
	}
	id, err := NormalizeID(d.ID)
	if err != nil {
		return Database{}, fmt.Errorf("database id: %w", err)
	}
	out.ID = id
	out.ParentID = normalizeOptionalID(d.ParentID)
	if d.LastEditedTime.IsZero() {
		return Database{}, fmt.Errorf("%w: database %s: LastEditedTime is required", ErrInvalidObject, id)
	}
	out.LastEditedTime = NormalizeTime(d.LastEditedTime)
	if d.SyncedAt.IsZero() {
		out.SyncedAt = now
	}
	out.SyncedAt = NormalizeTime(out.SyncedAt)
	if !IsJSONObject(d.Object) {
		return Database{}, fmt.Errorf("%w: database %s: Object is not a JSON object", ErrInvalidObject, id)
	}
	if err := validFileLinks("database", id, d.Files); err != nil {
		return Database{}, err
	}
	return out, nil
}

// Normalized validates d and returns a copy with normalized ids and times.
func (d *DataSource) Normalized(now time.Time) (DataSource, error) {
	if d == nil {
		return DataSource{}, fmt.Errorf("%w: nil data source", ErrInvalidObject)
	}
	out := *d
	if err := ValidateConnectionID(d.ConnectionID); err != nil {
		return DataSource{}, err
	}
	id, err := NormalizeID(d.ID)
	if err != nil {
		return DataSource{}, fmt.Errorf("data source id: %w", err)
	}
	out.ID = id
	// Rows and the file layout reference the database: a data source
	// without one cannot be placed.
	if out.DatabaseID, err = NormalizeID(d.DatabaseID); err != nil {
		return DataSource{}, fmt.Errorf("data source %s: database id: %w", id, err)
	}
	if d.LastEditedTime.IsZero() {
		return DataSource{}, fmt.Errorf("%w: data source %s: LastEditedTime is required", ErrInvalidObject, id)
	}
	out.LastEditedTime = NormalizeTime(d.LastEditedTime)
	if d.SyncedAt.IsZero() {
		out.SyncedAt = now
	}
	out.SyncedAt = NormalizeTime(out.SyncedAt)
	if !IsJSONObject(d.Object) {
		return DataSource{}, fmt.Errorf("%w: data source %s: Object is not a JSON object", ErrInvalidObject, id)
	}
	if err := validFileLinks("data source", id, d.Files); err != nil {
		return DataSource{}, err
	}
	return out, nil
}

// Version is the Version of a write of d.
func (d *DataSource) Version() Version {
	return Version{EditedAt: NormalizeTime(d.LastEditedTime), ObservedAt: NormalizeTime(d.SyncedAt)}
}

// Version is the Version of a write of p.
func (p *Page) Version() Version {
	return Version{EditedAt: NormalizeTime(p.LastEditedTime), ObservedAt: NormalizeTime(p.SyncedAt)}
}

// Version is the Version of a write of d.
func (d *Database) Version() Version {
	return Version{EditedAt: NormalizeTime(d.LastEditedTime), ObservedAt: NormalizeTime(d.SyncedAt)}
}
