package filesink

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/notionsync/notionsync/sync/markdown"
	"github.com/notionsync/notionsync/sync/sink/record"
)

// Options configures a Sink. The zero value is usable.
type Options struct {
	// Logger receives debug and warning messages. Default: no logging.
	Logger *zap.Logger
	// Now is the clock used when a write has no SyncedAt or a deletion no
	// time. Default: time.Now.
	Now func() time.Time
	// DirMode is the permission of created directories. Default: 0o750.
	DirMode fs.FileMode
	// FileMode is the permission of written files. Default: 0o640.
	FileMode fs.FileMode
	// DisableMarkdown turns off writing <page_id>.md next to each page.
	DisableMarkdown bool
	// DisableIndex turns off manifest.json, index.md, the database Markdown
	// files, the data source tables (data_sources/<id>.md and .csv) and
	// the resolution of links between Markdown files (links then point at
	// the files whether or not they exist). DisableMarkdown turns off the
	// tables too.
	DisableIndex bool
	// IndexDelay is how long after a write the connection's index files
	// are rewritten: writes within it share one rewrite. Close writes what
	// is pending. Default: 2s.
	IndexDelay time.Duration
}

// Sink stores objects under one root directory. See the package doc for
// the layout and the concurrency contract.
type Sink struct {
	root     string
	log      *zap.Logger
	now      func() time.Time
	dirMode  fs.FileMode
	fileMode fs.FileMode
	markdown bool
	renderer markdown.Renderer
	locks    *keyedMutex
	index    *indexer  // nil: Options.DisableIndex
	names    userNames // users.json per connection, for the renderer

	mu     sync.RWMutex // held shared by every call, exclusively by Close
	closed bool
}

// Open returns a Sink storing under root, creating the directory if needed.
func Open(root string, opts Options) (*Sink, error) {
	if root == "" {
		return nil, errors.New("filesink: empty root directory")
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("filesink: root %q: %w", root, err)
	}
	s := &Sink{
		root:     abs,
		log:      cmp.Or(opts.Logger, zap.NewNop()),
		now:      opts.Now,
		dirMode:  cmp.Or(opts.DirMode, 0o750),
		fileMode: cmp.Or(opts.FileMode, 0o640),
		markdown: !opts.DisableMarkdown,
		locks:    newKeyedMutex(),
	}
	if s.now == nil {
		s.now = time.Now
	}
	if !opts.DisableIndex {
		s.index = newIndexer(s, cmp.Or(opts.IndexDelay, 2*time.Second))
	}
	s.renderer = markdown.Renderer{
		PageURL: func(id string) string {
			if n, err := record.NormalizeID(id); err == nil {
				return n + ".md"
			}
			return ""
		},
		DatabaseURL: func(id string) string {
			if n, err := record.NormalizeID(id); err == nil {
				return "../databases/" + n + ".json"
			}
			return ""
		},
	}
	if err := os.MkdirAll(abs, s.dirMode); err != nil {
		return nil, fmt.Errorf("filesink: create root: %w", err)
	}
	return s, nil
}

// Root returns the absolute root directory.
func (s *Sink) Root() string { return s.root }

// Close makes later calls fail with record.ErrClosed, after waiting for
// calls in progress, and writes the index files of the writes not yet
// indexed. It is idempotent.
func (s *Sink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.index != nil {
		return s.index.flushAll(context.Background())
	}
	return nil
}

// FlushIndex writes the connection's index files (manifest.json, index.md,
// database Markdown) and re-renders the Markdown whose links changed, now
// rather than after Options.IndexDelay. Without an index it does nothing.
func (s *Sink) FlushIndex(ctx context.Context, connectionID string) error {
	end, err := s.begin()
	if err != nil {
		return err
	}
	defer end()
	if err := record.ValidateConnectionID(connectionID); err != nil {
		return err
	}
	if s.index == nil {
		return nil
	}
	return s.index.flush(ctx, connectionID)
}

func (s *Sink) begin() (end func(), err error) {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return nil, record.ErrClosed
	}
	return s.mu.RUnlock, nil
}

func dirName(kind record.Kind) string {
	switch kind {
	case record.KindDatabase:
		return "databases"
	case record.KindDataSource:
		return "data_sources"
	}
	return "pages"
}

// path returns the directory and JSON document path of an object. ids must
// be validated.
func (s *Sink) path(conn string, kind record.Kind, id string) (dir, doc string) {
	dir = filepath.Join(s.root, conn, dirName(kind))
	return dir, filepath.Join(dir, id+".json")
}

func validate(conn string, kind record.Kind, id string) (string, error) {
	if err := record.ValidateConnectionID(conn); err != nil {
		return "", err
	}
	if kind != record.KindPage && kind != record.KindDatabase && kind != record.KindDataSource {
		return "", fmt.Errorf("filesink: unknown object kind %q", kind)
	}
	n, err := record.NormalizeID(id)
	if err != nil {
		return "", fmt.Errorf("%s id: %w", kind, err)
	}
	return n, nil
}

// withLock runs fn under the object's in-process and cross-process locks,
// creating the object's directory first.
func (s *Sink) withLock(ctx context.Context, conn string, kind record.Kind, id string, fn func(dir, doc string) error) error {
	dir, doc := s.path(conn, kind, id)
	lockDir := filepath.Join(s.root, conn, ".locks")
	for _, d := range []string{dir, lockDir} {
		if err := os.MkdirAll(d, s.dirMode); err != nil {
			return fmt.Errorf("filesink: create directory: %w", err)
		}
	}
	unlock, err := s.locks.lock(ctx, doc)
	if err != nil {
		return err
	}
	defer unlock()
	lf, err := flockFile(filepath.Join(lockDir, string(kind)+"-"+id+".lock"))
	if err != nil {
		return err
	}
	defer lf.Close() // releases the flock
	return fn(dir, doc)
}

// write stores d at doc and, for pages, writes or removes the Markdown file
// (md nil: leave it as it is). The Markdown file goes first: the JSON
// document is the commit point.
func (s *Sink) write(dir, doc string, d *document, md []byte, removeMD bool, links *linkRecorder) error {
	data, err := d.encode()
	if err != nil {
		return err
	}
	mdPath := doc[:len(doc)-len(".json")] + ".md"
	if d.meta.Kind == record.KindDatabase && !removeMD {
		md = nil // a database's Markdown is written by the index
	}
	switch {
	case removeMD:
		if err := removeFile(mdPath); err != nil {
			return err
		}
		if d.meta.Kind == record.KindDataSource {
			if err := removeFile(doc[:len(doc)-len(".json")] + ".csv"); err != nil {
				return err
			}
		}
	case md != nil:
		if err := writeFileAtomic(mdPath, md, s.fileMode); err != nil {
			return err
		}
	}
	if err := writeFileAtomic(doc, data, s.fileMode); err != nil {
		return err
	}
	if err := syncDir(dir); err != nil {
		return err
	}
	s.noteIndex(&d.meta, links)
	return nil
}

// noteIndex tells the index about a committed write. A failure to index
// does not fail the write (the document is stored; the index is derived
// from the documents and rebuilt when unreadable).
func (s *Sink) noteIndex(m *meta, links *linkRecorder) {
	if s.index == nil {
		return
	}
	if err := s.index.note(m, links); err != nil {
		s.log.Warn("filesink: index update failed", zap.String("connection_id", m.ConnectionID), zap.String("id", m.ID), zap.Error(err))
	}
}

// PutPage stores p unless the stored version is newer (see package record),
// returning whether p was stored.
func (s *Sink) PutPage(ctx context.Context, p *record.Page) (written bool, err error) {
	end, err := s.begin()
	if err != nil {
		return false, err
	}
	defer end()
	np, err := p.Normalized(s.now())
	if err != nil {
		return false, err
	}
	fields, err := objectFields(np.Object)
	if err != nil {
		return false, fmt.Errorf("page %s: %w", np.ID, err)
	}
	keepBlocks := np.Archived && len(np.Blocks) == 0
	var blocks json.RawMessage
	if !keepBlocks {
		if blocks, err = record.AppendBlocks(nil, np.Blocks); err != nil {
			return false, fmt.Errorf("page %s: %w", np.ID, err)
		}
	}
	var md []byte
	var links *linkRecorder
	if s.markdown && !np.Archived {
		if s.index != nil {
			if links, err = s.index.recorder(np.ConnectionID, true); err != nil {
				// Render without link resolution rather than fail the
				// write: the document, the data, is what must be stored.
				s.log.Warn("filesink: index unavailable for link resolution", zap.String("connection_id", np.ConnectionID), zap.Error(err))
				links = nil
			}
		}
		md = s.renderWith(links, &np, fields)
	}
	v := np.Version()
	err = s.withLock(ctx, np.ConnectionID, record.KindPage, np.ID, func(dir, doc string) error {
		cur, exists, apply, clearUnshared, err := s.admit(dir, doc, v, np.SyncedAt, np.ConnectionID, "page", np.ID)
		if err != nil || !apply {
			return err
		}
		m := meta{
			Format: formatVersion, Kind: record.KindPage, ConnectionID: np.ConnectionID, ID: np.ID,
			ParentType: np.ParentType, ParentID: np.ParentID, DatabaseID: np.DatabaseID, DataSourceID: np.DataSourceID, Title: np.Title,
			LastEditedTime: np.LastEditedTime, SyncedAt: np.SyncedAt, Files: np.Files,
		}
		m.setVersion(v)
		if np.Archived {
			m.Deleted, m.DeletedAt, m.DeletedReason = true, np.LastEditedTime, record.ReasonTrashed
			if exists && cur.Deleted {
				m.DeletedAt = cur.DeletedAt
			}
		}
		if exists && cur.Unshared && !clearUnshared {
			m.Unshared, m.UnsharedAt = true, cur.UnsharedAt
		}
		d := &document{meta: m, object: fields, blocks: blocks}
		if keepBlocks && exists {
			old, err := readDocument(doc)
			if err != nil {
				return err
			}
			d.blocks = old.blocks
		}
		written = true
		return s.write(dir, doc, d, md, np.Archived, links)
	})
	if err != nil {
		return false, err
	}
	if written && s.index != nil && s.markdown && !np.Archived && (np.DataSourceID != "" || np.DatabaseID != "") {
		s.index.noteRow(np.ConnectionID, np.ID, v, record.Lookup(fields, "properties"))
	}
	return written, nil
}

// userNames returns the resolver of the connection's user names (its
// users.json), or nil when the sink holds no users for it.
func (s *Sink) userNames(conn string) func(id string) (string, bool) {
	names := s.names.lookup(s.root, conn)
	if names == nil {
		return nil
	}
	return func(id string) (string, bool) {
		nid, err := record.NormalizeID(id)
		if err != nil {
			return "", false
		}
		n, ok := names[nid]
		return n, ok
	}
}

// renderWith renders the page's Markdown, resolving links with links (nil:
// the Sink's renderer as configured); a page whose JSON the renderer
// rejects still gets a file saying so (the JSON document keeps all the
// data).
func (s *Sink) renderWith(links *linkRecorder, p *record.Page, fields []record.Field) []byte {
	r := s.renderer
	if links != nil {
		r.Links = links
	}
	r.UserName = s.userNames(p.ConnectionID)
	r.FileURL = localFiles(p.Files)
	md, err := r.RenderPage(p.Title, record.Lookup(fields, "properties"), record.Lookup(fields, "icon"), record.Lookup(fields, "cover"), p.Blocks)
	if err != nil {
		s.log.Warn("filesink: markdown rendering failed",
			zap.String("connection_id", p.ConnectionID), zap.String("page_id", p.ID), zap.Error(err))
		return []byte("<!-- notionsync: this page could not be rendered to Markdown; see " + p.ID + ".json -->\n")
	}
	return md
}

// localFiles returns a Renderer.FileURL that links an object's stored files
// (nil: none), relative to the object's Markdown (pages/<id>.md,
// databases/<id>.md, data_sources/<id>.md: all one level below files/).
func localFiles(links []record.FileLink) func(string) string {
	if len(links) == 0 {
		return nil
	}
	local := make(map[string]string, len(links))
	for _, l := range links {
		local[l.Key] = "../files/" + l.Name()
	}
	return func(u string) string { return local[record.FileKey(u)] }
}

// rewriteMeta applies change to the metadata of the document at doc.
func (s *Sink) rewriteMeta(dir, doc string, change func(*meta)) error {
	d, err := readDocument(doc)
	if err != nil {
		return err
	}
	change(&d.meta)
	return s.write(dir, doc, d, nil, false, nil)
}

// PutDatabase stores d unless the stored version is newer, returning
// whether d was stored.
func (s *Sink) PutDatabase(ctx context.Context, d *record.Database) (written bool, err error) {
	end, err := s.begin()
	if err != nil {
		return false, err
	}
	defer end()
	nd, err := d.Normalized(s.now())
	if err != nil {
		return false, err
	}
	return s.putSchema(ctx, nd.Object, nd.Version(), meta{
		Format: formatVersion, Kind: record.KindDatabase, ConnectionID: nd.ConnectionID, ID: nd.ID,
		ParentType: nd.ParentType, ParentID: nd.ParentID, Title: nd.Title,
		LastEditedTime: nd.LastEditedTime, SyncedAt: nd.SyncedAt, Files: nd.Files,
	}, nd.Archived)
}

// PutDataSource stores d unless the stored version is newer, returning
// whether d was stored. The document goes to data_sources/<id>.json; its
// metadata names the database (parent_type "database_id").
func (s *Sink) PutDataSource(ctx context.Context, d *record.DataSource) (written bool, err error) {
	end, err := s.begin()
	if err != nil {
		return false, err
	}
	defer end()
	nd, err := d.Normalized(s.now())
	if err != nil {
		return false, err
	}
	return s.putSchema(ctx, nd.Object, nd.Version(), meta{
		Format: formatVersion, Kind: record.KindDataSource, ConnectionID: nd.ConnectionID, ID: nd.ID,
		ParentType: "database_id", ParentID: nd.DatabaseID, DatabaseID: nd.DatabaseID, Title: nd.Title,
		LastEditedTime: nd.LastEditedTime, SyncedAt: nd.SyncedAt, Files: nd.Files,
	}, nd.Archived)
}

// putSchema stores a database or data source document (an object without
// blocks or Markdown) whose metadata m is filled in but for the version,
// deletion and unshared marks.
func (s *Sink) putSchema(ctx context.Context, object json.RawMessage, v record.Version, m meta, archived bool) (written bool, err error) {
	fields, err := objectFields(object)
	if err != nil {
		return false, fmt.Errorf("%s %s: %w", m.Kind, m.ID, err)
	}
	err = s.withLock(ctx, m.ConnectionID, m.Kind, m.ID, func(dir, doc string) error {
		cur, exists, apply, clearUnshared, err := s.admit(dir, doc, v, m.SyncedAt, m.ConnectionID, string(m.Kind), m.ID)
		if err != nil || !apply {
			return err
		}
		m.setVersion(v)
		if archived {
			m.Deleted, m.DeletedAt, m.DeletedReason = true, m.LastEditedTime, record.ReasonTrashed
			if exists && cur.Deleted {
				m.DeletedAt = cur.DeletedAt
			}
		}
		if exists && cur.Unshared && !clearUnshared {
			m.Unshared, m.UnsharedAt = true, cur.UnsharedAt
		}
		written = true
		// An archived database or data source loses its Markdown (and
		// CSV) as a deleted one does.
		return s.write(dir, doc, &document{meta: m, object: fields}, nil, archived, nil)
	})
	if err != nil {
		return false, err
	}
	return written, nil
}

// DeletePage records that the page was deleted at at (zero: now): a
// tombstone that keeps the last stored content.
func (s *Sink) DeletePage(ctx context.Context, connectionID, pageID string, at time.Time) error {
	return s.delete(ctx, connectionID, record.KindPage, pageID, at)
}

// DeleteDatabase records that the database was deleted at at (zero: now).
func (s *Sink) DeleteDatabase(ctx context.Context, connectionID, databaseID string, at time.Time) error {
	return s.delete(ctx, connectionID, record.KindDatabase, databaseID, at)
}

// DeleteDataSource records that the data source was deleted at at (zero:
// now): a tombstone that keeps the last stored content.
func (s *Sink) DeleteDataSource(ctx context.Context, connectionID, dataSourceID string, at time.Time) error {
	return s.delete(ctx, connectionID, record.KindDataSource, dataSourceID, at)
}

func (s *Sink) delete(ctx context.Context, conn string, kind record.Kind, rawID string, at time.Time) error {
	end, err := s.begin()
	if err != nil {
		return err
	}
	defer end()
	id, err := validate(conn, kind, rawID)
	if err != nil {
		return err
	}
	if at.IsZero() {
		at = s.now()
	}
	v := record.TombstoneVersion(at)
	at = v.ObservedAt
	return s.withLock(ctx, conn, kind, id, func(dir, doc string) error {
		d, err := readDocument(doc)
		switch {
		case notExist(err):
			d = &document{
				meta:   meta{Format: formatVersion, Kind: kind, ConnectionID: conn, ID: id},
				object: []record.Field{{Key: "object", Value: mustString(string(kind))}, {Key: "id", Value: mustString(id)}},
			}
		case err != nil:
			return err
		case !v.Supersedes(d.meta.state().Version):
			s.log.Debug("filesink: stale deletion ignored", zap.String("connection_id", conn),
				zap.String("id", id), zap.Stringer("stored", d.meta.state().Version), zap.Stringer("incoming", v))
			return nil
		}
		d.meta.setVersion(v)
		if !d.meta.Deleted {
			d.meta.Deleted, d.meta.DeletedAt = true, at
		}
		// Pages and databases (whose Markdown the index writes) lose
		// their Markdown: the mirror shows what Notion shows.
		return s.write(dir, doc, d, nil, true, nil)
	})
}

// Tombstone records that a direct GET at at confirmed the object gone for
// reason (see sink.Sink): the stored document is kept, marked deleted with
// the reason, and a page's Markdown file is removed. Its version is the
// stored edit time observed at at, so a later fetch restores the object.
func (s *Sink) Tombstone(ctx context.Context, conn string, kind record.Kind, rawID string, reason record.Reason, at time.Time) error {
	end, err := s.begin()
	if err != nil {
		return err
	}
	defer end()
	id, err := validate(conn, kind, rawID)
	if err != nil {
		return err
	}
	if !record.ValidReason(reason) {
		return fmt.Errorf("filesink: tombstone of %s %s: unknown reason %q", kind, id, reason)
	}
	if at.IsZero() {
		at = s.now()
	}
	at = record.NormalizeTime(at)
	if _, doc := s.path(conn, kind, id); !fileExists(doc) {
		return nil // nothing stored: nothing to mark
	}
	return s.withLock(ctx, conn, kind, id, func(dir, doc string) error {
		d, err := readDocument(doc)
		if notExist(err) {
			return nil
		}
		if err != nil {
			return err
		}
		cur := d.meta.state()
		v := record.ConfirmedTombstoneVersion(cur.Version, at)
		if !v.Supersedes(cur.Version) {
			s.log.Debug("filesink: tombstone older than the stored copy ignored", zap.String("connection_id", conn),
				zap.String("id", id), zap.Stringer("stored", cur.Version), zap.Stringer("incoming", v))
			return nil
		}
		d.meta.setVersion(v)
		if !d.meta.Deleted {
			d.meta.Deleted, d.meta.DeletedAt = true, at
		}
		d.meta.DeletedReason = reason
		if reason == record.ReasonUnshared && !d.meta.Unshared {
			d.meta.Unshared, d.meta.UnsharedAt = true, at
		}
		return s.write(dir, doc, d, nil, true, nil)
	})
}

// List calls fn with the id and state of each object of kind stored for
// the connection. Documents that cannot be read are skipped with a warning
// (Stat and GetPage report them); fn runs with no lock held.
func (s *Sink) List(ctx context.Context, conn string, kind record.Kind, fn func(id string, st record.State) error) error {
	end, err := s.begin()
	if err != nil {
		return err
	}
	defer end()
	if err := record.ValidateConnectionID(conn); err != nil {
		return err
	}
	if kind != record.KindPage && kind != record.KindDatabase && kind != record.KindDataSource {
		return fmt.Errorf("filesink: unknown object kind %q", kind)
	}
	dir := filepath.Join(s.root, conn, dirName(kind))
	entries, err := os.ReadDir(dir)
	if notExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("filesink: list %s: %w", kind, err)
	}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || filepath.Ext(name) != ".json" {
			continue
		}
		id, err := record.NormalizeID(name[:len(name)-len(".json")])
		if err != nil || id+".json" != name {
			continue // not a document of this package (a temp file, ...)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		m, err := readMeta(filepath.Join(dir, name))
		if notExist(err) {
			continue // removed meanwhile
		}
		if err != nil {
			s.log.Warn("filesink: unreadable document skipped in listing", zap.String("connection_id", conn), zap.String("id", id), zap.Error(err))
			continue
		}
		if err := fn(id, m.state()); err != nil {
			return err
		}
	}
	return nil
}

func mustString(s string) json.RawMessage {
	b, _ := json.Marshal(s) // marshaling a string cannot fail
	return b
}

// MarkUnshared records that Notion answered 404 for the object at at (zero:
// now). It marks the stored page, database or data source with that id; an
// object the sink does not hold is ignored.
func (s *Sink) MarkUnshared(ctx context.Context, connectionID, objectID string, at time.Time) error {
	end, err := s.begin()
	if err != nil {
		return err
	}
	defer end()
	id, err := validate(connectionID, record.KindPage, objectID)
	if err != nil {
		return err
	}
	if at.IsZero() {
		at = s.now()
	}
	at = record.NormalizeTime(at)
	for _, kind := range []record.Kind{record.KindPage, record.KindDatabase, record.KindDataSource} {
		if _, doc := s.path(connectionID, kind, id); !fileExists(doc) {
			continue
		}
		err := s.withLock(ctx, connectionID, kind, id, func(dir, doc string) error {
			m, err := readMeta(doc)
			if err != nil {
				return err
			}
			if !record.UnsharedApplies(m.state(), at) {
				return nil
			}
			return s.rewriteMeta(dir, doc, func(m *meta) { m.Unshared, m.UnsharedAt = true, at })
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// Stat returns the stored state of an object, or record.ErrNotFound.
func (s *Sink) Stat(ctx context.Context, connectionID string, kind record.Kind, objectID string) (record.State, error) {
	end, err := s.begin()
	if err != nil {
		return record.State{}, err
	}
	defer end()
	id, err := validate(connectionID, kind, objectID)
	if err != nil {
		return record.State{}, err
	}
	_, doc := s.path(connectionID, kind, id)
	m, err := readMeta(doc)
	if notExist(err) {
		return record.State{}, fmt.Errorf("%s %s: %w", kind, id, record.ErrNotFound)
	}
	if err != nil {
		return record.State{}, err
	}
	return m.state(), nil
}

// GetPage returns the stored page and its state. For a bare tombstone (a
// page deleted before it was ever stored) Object and Blocks are nil.
func (s *Sink) GetPage(ctx context.Context, connectionID, pageID string) (*record.Page, record.State, error) {
	d, err := s.get(connectionID, record.KindPage, pageID)
	if err != nil {
		return nil, record.State{}, err
	}
	m := &d.meta
	p := &record.Page{
		ConnectionID: m.ConnectionID, ID: m.ID, ParentType: m.ParentType, ParentID: m.ParentID,
		DatabaseID: m.DatabaseID, DataSourceID: m.DataSourceID, LastEditedTime: m.LastEditedTime, Archived: m.Deleted,
		Title: m.Title, SyncedAt: m.SyncedAt, Files: m.Files,
	}
	if m.state().HasContent() {
		p.Object = record.AppendObject(nil, d.object)
		if p.Blocks, err = record.DecodeBlocks(d.blocks); err != nil {
			return nil, record.State{}, err
		}
	}
	return p, m.state(), nil
}

// GetDatabase returns the stored database and its state.
func (s *Sink) GetDatabase(ctx context.Context, connectionID, databaseID string) (*record.Database, record.State, error) {
	d, err := s.get(connectionID, record.KindDatabase, databaseID)
	if err != nil {
		return nil, record.State{}, err
	}
	m := &d.meta
	db := &record.Database{
		ConnectionID: m.ConnectionID, ID: m.ID, ParentType: m.ParentType, ParentID: m.ParentID,
		Title: m.Title, LastEditedTime: m.LastEditedTime, Archived: m.Deleted, SyncedAt: m.SyncedAt, Files: m.Files,
	}
	if m.state().HasContent() {
		db.Object = record.AppendObject(nil, d.object)
	}
	return db, m.state(), nil
}

// GetDataSource returns the stored data source and its state.
func (s *Sink) GetDataSource(ctx context.Context, connectionID, dataSourceID string) (*record.DataSource, record.State, error) {
	d, err := s.get(connectionID, record.KindDataSource, dataSourceID)
	if err != nil {
		return nil, record.State{}, err
	}
	m := &d.meta
	ds := &record.DataSource{
		ConnectionID: m.ConnectionID, ID: m.ID, DatabaseID: m.DatabaseID,
		Title: m.Title, LastEditedTime: m.LastEditedTime, Archived: m.Deleted, SyncedAt: m.SyncedAt, Files: m.Files,
	}
	if m.state().HasContent() {
		ds.Object = record.AppendObject(nil, d.object)
	}
	return ds, m.state(), nil
}

func (s *Sink) get(conn string, kind record.Kind, rawID string) (*document, error) {
	end, err := s.begin()
	if err != nil {
		return nil, err
	}
	defer end()
	id, err := validate(conn, kind, rawID)
	if err != nil {
		return nil, err
	}
	_, doc := s.path(conn, kind, id)
	d, err := readDocument(doc)
	if notExist(err) {
		return nil, fmt.Errorf("%s %s: %w", kind, id, record.ErrNotFound)
	}
	return d, err
}

// admit applies the sink's ordering rule inside an object's lock: it reads
// the stored metadata of doc and reports whether a change of version v,
// fetched at syncedAt, is applied (apply). A rejected change still clears a
// stale unshared mark (a fetch after a 404 proves access again). cur and
// exists describe what is stored; clearUnshared says whether an applied
// change must drop the unshared mark.
func (s *Sink) admit(dir, doc string, v record.Version, syncedAt time.Time, connID, kind, id string) (cur meta, exists, apply, clearUnshared bool, err error) {
	cur, err = readMeta(doc)
	exists = err == nil
	if err != nil && !notExist(err) {
		return cur, false, false, false, err
	}
	if !exists {
		return cur, false, true, false, nil
	}
	st := cur.state()
	clearUnshared = record.ClearsUnshared(st, syncedAt)
	if v.Supersedes(st.Version) {
		return cur, true, true, clearUnshared, nil
	}
	s.log.Debug("filesink: older version rejected", zap.String("kind", kind),
		zap.String("connection_id", connID), zap.String("id", id),
		zap.Stringer("stored", st.Version), zap.Stringer("incoming", v))
	if clearUnshared {
		err = s.rewriteMeta(dir, doc, func(m *meta) { m.Unshared, m.UnsharedAt = false, time.Time{} })
	}
	return cur, true, false, clearUnshared, err
}
