package filesink

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/notionsync/notionsync/sync/markdown"
	"github.com/notionsync/notionsync/sync/sink/record"
)

// The index: per connection, manifest.json (every object the folder holds:
// id -> title, path, parent, last_edited_time, tombstoned) and index.md (the
// page tree by title). Both are derived from one in-memory view per
// connection that every write updates (a map assignment), and are rewritten
// at most once per Options.IndexDelay, not once per page: a flush reads the
// manifest on disk (another process may share the root), merges this
// process's newer entries, re-renders the few Markdown files whose links
// changed status (see below), writes the database Markdown of databases
// whose rows changed, and writes both files, under the connection's index
// lock. Its cost is linear in the connection's object count, not in the
// number of writes since the last flush, and no object document is read
// except the ones it re-renders (BenchmarkIndexFlush measures it).
//
// Links: a page's Markdown links an object only if the mirror holds it
// when the page is rendered. The manifest remembers, per page, what its
// Markdown links to ("links") and which of those were rendered as plain
// text ("unresolved_links"). A flush re-renders a page when one of those
// changed status: an unresolved target arrived, a linked one was deleted. So
// the order in which a sync writes pages does not leave plain text where a
// link belongs, nor links that lead nowhere.

// manifestFormat is the "format" of manifest.json.
const manifestFormat = 1

// indexEntry is one object of manifest.json.
type indexEntry struct {
	Kind           record.Kind  `json:"kind"`
	Title          string       `json:"title"`
	Path           string       `json:"path"`
	Parent         *indexParent `json:"parent,omitempty"`
	LastEditedTime time.Time    `json:"last_edited_time,omitzero"`
	Tombstoned     bool         `json:"tombstoned"`
	Unshared       bool         `json:"unshared,omitempty"`
	// DataSource is the data source a row belongs to, when known.
	DataSource string `json:"data_source,omitempty"`
	// Links are the ids of the pages and databases the object's Markdown
	// links to; Unresolved those of them it renders as plain text because
	// the mirror did not hold them then.
	Links      []string `json:"links,omitempty"`
	Unresolved []string `json:"unresolved_links,omitempty"`
	// The stored version, to merge entries of several processes.
	VersionEditedAt   time.Time `json:"version_edited_at"`
	VersionObservedAt time.Time `json:"version_observed_at"`

	// rerender marks a page whose Markdown predates link tracking (an
	// entry rebuilt from the documents): the next flush renders it again.
	rerender bool
}

// indexParent is Notion's parent of an object.
type indexParent struct {
	Type string `json:"type"`
	ID   string `json:"id,omitempty"`
}

func (e *indexEntry) version() record.Version {
	return record.Version{EditedAt: e.VersionEditedAt, ObservedAt: e.VersionObservedAt}
}

// live reports whether the object has a Markdown file in the mirror.
func (e *indexEntry) live() bool { return e != nil && !e.Tombstoned }

// manifestFile is manifest.json.
type manifestFile struct {
	Format       int                    `json:"format"`
	ConnectionID string                 `json:"connection_id"`
	GeneratedAt  time.Time              `json:"generated_at"`
	Objects      map[string]*indexEntry `json:"objects"`
}

// entryFromMeta builds an object's entry from its stored metadata.
func entryFromMeta(m *meta) *indexEntry {
	e := &indexEntry{
		Kind: m.Kind, Title: m.Title, LastEditedTime: m.LastEditedTime,
		Tombstoned: m.Deleted, Unshared: m.Unshared,
		VersionEditedAt: m.VersionEditedAt, VersionObservedAt: m.VersionObservedAt,
	}
	if m.Kind == record.KindPage {
		e.DataSource = m.DataSourceID
	}
	switch {
	case m.DatabaseID != "":
		e.Parent = &indexParent{Type: "database_id", ID: m.DatabaseID}
	case m.ParentType != "":
		e.Parent = &indexParent{Type: m.ParentType, ID: m.ParentID}
	}
	return e
}

// linkRecorder is the markdown.Links of one render: it resolves against a
// connection's view and records what it linked and what it could not.
type linkRecorder struct {
	lookup     func(id string) *indexEntry
	fromPages  bool // the rendered file is in pages/ (else databases/)
	links      []string
	unresolved []string
}

func (l *linkRecorder) resolve(id string, kind record.Kind) (markdown.Target, bool) {
	n, err := record.NormalizeID(id)
	if err != nil {
		return markdown.Target{}, false // not an id: can never resolve
	}
	e := l.lookup(n)
	if !slices.Contains(l.links, n) {
		l.links = append(l.links, n)
	}
	if !e.live() || e.Kind != kind {
		if !slices.Contains(l.unresolved, n) {
			l.unresolved = append(l.unresolved, n)
		}
		t := markdown.Target{}
		if e != nil {
			t.Title = e.Title
		}
		return t, false
	}
	href := dirName(kind) + "/" + n + ".md"
	if l.fromPages && kind == record.KindPage {
		href = n + ".md"
	} else {
		href = "../" + href
	}
	return markdown.Target{Href: href, Title: e.Title}, true
}

func (l *linkRecorder) Page(id string) (markdown.Target, bool) {
	return l.resolve(id, record.KindPage)
}

func (l *linkRecorder) Database(id string) (markdown.Target, bool) {
	return l.resolve(id, record.KindDatabase)
}

// setLinks stores what a render linked in e.
func (e *indexEntry) setLinks(l *linkRecorder) {
	e.Links = slices.Sorted(slices.Values(l.links))
	e.Unresolved = slices.Sorted(slices.Values(l.unresolved))
	if e.Links == nil {
		e.Links = []string{} // tracked, links nothing (nil: unknown)
	}
}

// stale reports whether e's Markdown links differ from what a render
// against objects would link now.
func (e *indexEntry) stale(objects map[string]*indexEntry) bool {
	if e.rerender {
		return true
	}
	for _, id := range e.Links {
		_, unresolved := slices.BinarySearch(e.Unresolved, id)
		if objects[id].live() == unresolved {
			return true
		}
	}
	return false
}

// linksAny reports whether e's Markdown links one of ids (a renamed object:
// the link's text is its old title).
func (e *indexEntry) linksAny(ids map[string]bool) bool {
	if len(ids) == 0 {
		return false
	}
	for _, id := range e.Links {
		if ids[id] {
			return true
		}
	}
	return false
}

// indexer keeps the per-connection views and flushes them.
type indexer struct {
	s        *Sink
	delay    time.Duration
	instance string // names this Sink's pending marker

	mu     sync.Mutex
	conns  map[string]*connIndex
	closed bool
}

// connIndex is one connection's view.
type connIndex struct {
	flushMu sync.Mutex // one flush at a time

	mu      sync.Mutex
	loaded  bool
	objects map[string]*indexEntry // never mutated in place once stored
	pending map[string]bool        // ids changed since the last flush
	renamed map[string]bool        // of pending, those whose title changed
	timer   *time.Timer
	// written is manifest.json as this process last wrote it: while the
	// file on disk is still that one, no other process flushed and a
	// flush need not read it back (guarded by flushMu).
	written os.FileInfo
	// marker says whether this process's pending marker exists;
	// foreignMarkers are other processes' markers a scan has covered.
	marker         bool
	foreignMarkers []string
	// rows caches the properties of rows for their data source tables
	// (see tables.go), guarded by mu.
	rows map[string]cachedRow
	// tableLinks holds, per data source table written, the ids it links
	// (guarded by mu).
	tableLinks map[string]map[string]bool
	// rendered caches the rows' table lines (guarded by flushMu).
	rendered map[string]*renderedRow
}

func newIndexer(s *Sink, delay time.Duration) *indexer {
	return &indexer{s: s, delay: delay, instance: fmt.Sprintf("%d-%x", os.Getpid(), rand.Uint64()),
		conns: make(map[string]*connIndex)}
}

func (x *indexer) conn(conn string) *connIndex {
	x.mu.Lock()
	defer x.mu.Unlock()
	c := x.conns[conn]
	if c == nil {
		c = &connIndex{objects: make(map[string]*indexEntry), pending: make(map[string]bool), renamed: make(map[string]bool)}
		x.conns[conn] = c
	}
	return c
}

// load fills the view from manifest.json, or, when there is none (a folder
// written before the index existed), from the documents themselves. The
// caller holds c.mu.
func (x *indexer) load(conn string, c *connIndex) error {
	if c.loaded {
		return nil
	}
	objects, err := readManifest(x.s.manifestPath(conn))
	if err != nil && !notExist(err) {
		// The manifest is derived data: rebuild it rather than fail writes.
		x.s.log.Warn("filesink: unreadable manifest rebuilt from the documents", zap.String("connection_id", conn), zap.Error(err))
	}
	if err != nil {
		objects, err = x.scan(conn)
		for id := range objects {
			c.pending[id] = true
		}
	} else if err = x.recover(conn, c, objects); err != nil {
		return err
	}
	if err != nil {
		return err
	}
	maps.Copy(c.objects, objects)
	c.loaded = true
	return nil
}

// The pending marker: a process with writes not yet in manifest.json keeps
// an empty file .locks/index-pending-<instance> (created on the first
// write after a flush, removed by the flush that empties its pending set).
// A process that finds another's marker when it loads the manifest cannot
// tell a live process from one killed before its flush, so it merges the
// documents' metadata into the manifest (one scan), and removes the marker
// once its own flush has written the result.

func (x *indexer) markerPath(conn, instance string) string {
	return filepath.Join(x.s.root, conn, ".locks", "index-pending-"+instance)
}

// recover merges into objects what the documents hold that a crashed
// process's unflushed writes left out of the manifest. The caller holds
// c.mu.
func (x *indexer) recover(conn string, c *connIndex, objects map[string]*indexEntry) error {
	markers, err := filepath.Glob(x.markerPath(conn, "*"))
	if err != nil {
		return err
	}
	markers = slices.DeleteFunc(markers, func(m string) bool { return m == x.markerPath(conn, x.instance) })
	if len(markers) == 0 {
		return nil
	}
	scanned, err := x.scan(conn)
	if err != nil {
		return err
	}
	for id, e := range scanned {
		if d := objects[id]; d == nil || !d.version().Supersedes(e.version()) {
			objects[id] = e
			c.pending[id] = true
		}
	}
	c.foreignMarkers = append(c.foreignMarkers, markers...)
	return nil
}

// scan rebuilds a connection's entries from its documents' metadata. Pages
// are marked for re-rendering: their Markdown may predate link resolution.
func (x *indexer) scan(conn string) (map[string]*indexEntry, error) {
	objects := make(map[string]*indexEntry)
	for _, kind := range []record.Kind{record.KindPage, record.KindDatabase, record.KindDataSource} {
		docs, err := filepath.Glob(filepath.Join(x.s.root, conn, dirName(kind), "*.json"))
		if err != nil {
			return nil, err
		}
		for _, doc := range docs {
			id := strings.TrimSuffix(filepath.Base(doc), ".json")
			if _, err := record.NormalizeID(id); err != nil {
				continue
			}
			m, err := readMeta(doc)
			if err != nil {
				// Left out of the index, not a reason to fail every write.
				x.s.log.Warn("filesink: document left out of the index", zap.String("path", doc), zap.Error(err))
				continue
			}
			e := entryFromMeta(&m)
			e.rerender = kind == record.KindPage && !m.Deleted && x.s.markdown
			objects[id] = e
		}
	}
	return objects, nil
}

// recorder returns a Links for rendering a file of conn.
func (x *indexer) recorder(conn string, fromPages bool) (*linkRecorder, error) {
	c := x.conn(conn)
	c.mu.Lock()
	err := x.load(conn, c)
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return &linkRecorder{fromPages: fromPages, lookup: func(id string) *indexEntry {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.objects[id]
	}}, nil
}

// note records a stored object's new state (called under the object's
// lock, after its document was written) and schedules a flush. links is
// what its Markdown links; nil keeps what was recorded before.
func (x *indexer) note(m *meta, links *linkRecorder) error {
	c := x.conn(m.ConnectionID)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := x.load(m.ConnectionID, c); err != nil {
		return err
	}
	e := entryFromMeta(m)
	if prev := c.objects[m.ID]; prev != nil && prev.Title != e.Title {
		c.renamed[m.ID] = true
	}
	switch prev := c.objects[m.ID]; {
	case links != nil:
		e.setLinks(links)
	case prev != nil && !e.Tombstoned:
		e.Links, e.Unresolved, e.rerender = prev.Links, prev.Unresolved, prev.rerender
	}
	c.objects[m.ID] = e
	c.pending[m.ID] = true
	if !c.marker {
		if err := os.WriteFile(x.markerPath(m.ConnectionID, x.instance), nil, 0o600); err != nil {
			return fmt.Errorf("filesink: index marker: %w", err)
		}
		c.marker = true
	}
	x.schedule(m.ConnectionID, c)
	return nil
}

// schedule arms c's flush timer. The caller holds c.mu.
func (x *indexer) schedule(conn string, c *connIndex) {
	x.mu.Lock()
	closed := x.closed
	x.mu.Unlock()
	if c.timer != nil || closed {
		return
	}
	c.timer = time.AfterFunc(x.delay, func() {
		end, err := x.s.begin()
		if err != nil {
			return // closed: Close flushed
		}
		defer end()
		if err := x.flush(context.Background(), conn); err != nil {
			x.s.log.Warn("filesink: index flush failed; retried on the next write", zap.String("connection_id", conn), zap.Error(err))
		}
	})
}

// flushAll flushes every connection with changes; after it, no timer runs.
func (x *indexer) flushAll(ctx context.Context) error {
	x.mu.Lock()
	x.closed = true
	conns := slices.Collect(maps.Keys(x.conns))
	x.mu.Unlock()
	var errs []error
	for _, conn := range conns {
		errs = append(errs, x.flush(ctx, conn))
	}
	return errors.Join(errs...)
}

// flush writes conn's manifest.json, index.md and the Markdown that the
// changes since the last flush made stale.
func (x *indexer) flush(ctx context.Context, conn string) (err error) {
	c := x.conn(conn)
	c.flushMu.Lock()
	defer c.flushMu.Unlock()
	c.mu.Lock()
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	if err := x.load(conn, c); err != nil {
		c.mu.Unlock()
		return err
	}
	pending := c.pending
	if len(pending) == 0 {
		c.mu.Unlock()
		return nil
	}
	renamed := c.renamed
	c.pending, c.renamed = make(map[string]bool), make(map[string]bool)
	view := maps.Clone(c.objects)
	c.mu.Unlock()
	defer func() {
		if err != nil { // keep the changes for the next flush
			c.mu.Lock()
			maps.Copy(c.pending, pending)
			maps.Copy(c.renamed, renamed)
			c.mu.Unlock()
		}
	}()

	lockDir := filepath.Join(x.s.root, conn, ".locks")
	if err := os.MkdirAll(lockDir, x.s.dirMode); err != nil {
		return fmt.Errorf("filesink: create directory: %w", err)
	}
	lf, err := flockFile(filepath.Join(lockDir, "index.lock"))
	if err != nil {
		return err
	}
	defer lf.Close()

	// Merge: what another process flushed, unless this one stored a newer
	// version since.
	var objects map[string]*indexEntry
	if fi, err := os.Stat(x.s.manifestPath(conn)); err != nil || c.written == nil || !os.SameFile(fi, c.written) ||
		!fi.ModTime().Equal(c.written.ModTime()) || fi.Size() != c.written.Size() {
		objects, err = readManifest(x.s.manifestPath(conn))
		if err != nil && !notExist(err) {
			x.s.log.Warn("filesink: unreadable manifest replaced", zap.String("connection_id", conn), zap.Error(err))
		}
	}
	if objects == nil {
		objects = make(map[string]*indexEntry, len(view))
	}
	for id, e := range view {
		if d := objects[id]; d == nil || e.version().Supersedes(d.version()) {
			objects[id] = e
		}
	}

	rerendered := make(map[string]bool)
	if x.s.markdown {
		for _, id := range slices.Sorted(maps.Keys(objects)) {
			if e := objects[id]; e.Kind == record.KindPage && e.live() && (e.stale(objects) || e.linksAny(renamed)) {
				if err := x.rerenderPage(ctx, conn, id, objects); err != nil {
					return err
				}
				rerendered[id] = true
			}
		}
		if err := x.writeDatabases(ctx, conn, objects, pending); err != nil {
			return err
		}
		if err := x.writeDataSources(ctx, conn, c, objects, pending); err != nil {
			return err
		}
	}
	if err := x.writeIndexFiles(conn, objects); err != nil {
		return err
	}
	if c.written, err = os.Stat(x.s.manifestPath(conn)); err != nil {
		return fmt.Errorf("filesink: %w", err)
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	for id, e := range objects {
		if !c.pending[id] { // a write since the snapshot is newer
			c.objects[id] = e
		}
	}
	for _, m := range c.foreignMarkers {
		if err := removeFile(m); err != nil {
			return err
		}
	}
	c.foreignMarkers = nil
	if len(c.pending) == 0 && c.marker {
		if err := removeFile(x.markerPath(conn, x.instance)); err != nil {
			return err
		}
		c.marker = false
	}
	return nil
}

// rerenderPage renders a page's Markdown again from its stored document and
// updates its entry in objects.
func (x *indexer) rerenderPage(ctx context.Context, conn, id string, objects map[string]*indexEntry) error {
	s := x.s
	return s.withLock(ctx, conn, record.KindPage, id, func(dir, doc string) error {
		d, err := readDocument(doc)
		if notExist(err) {
			return nil
		}
		if err != nil {
			return err
		}
		e := entryFromMeta(&d.meta)
		if !d.meta.Deleted {
			blocks, err := record.DecodeBlocks(d.blocks)
			if err != nil {
				return fmt.Errorf("filesink: page %s: %w", id, err)
			}
			rec := &linkRecorder{fromPages: true, lookup: func(id string) *indexEntry { return objects[id] }}
			md := s.renderWith(rec, &record.Page{ConnectionID: conn, ID: id, Title: d.meta.Title, Blocks: blocks, Files: d.meta.Files}, d.object)
			if err := writeFileAtomic(filepath.Join(dir, id+".md"), md, s.fileMode); err != nil {
				return err
			}
			if err := syncDir(dir); err != nil {
				return err
			}
			e.setLinks(rec)
		}
		objects[id] = e
		return nil
	})
}

// writeDatabases writes the Markdown of every live database that pending
// touches (the database itself, or one of its rows).
func (x *indexer) writeDatabases(ctx context.Context, conn string, objects map[string]*indexEntry, pending map[string]bool) error {
	rows := make(map[string][]markdown.Row)
	touched := make(map[string]bool)
	for id, e := range objects {
		if e.Kind == record.KindDatabase && pending[id] {
			touched[id] = true
		}
		if e.Kind == record.KindDataSource && pending[id] && e.Parent != nil {
			touched[e.Parent.ID] = true // the database lists its data sources
		}
		if e.Kind != record.KindPage || e.Parent == nil || e.Parent.Type != "database_id" {
			continue
		}
		if pending[id] {
			touched[e.Parent.ID] = true
		}
		if e.live() {
			rows[e.Parent.ID] = append(rows[e.Parent.ID], markdown.Row{ID: id, Title: e.Title})
		}
	}
	for _, id := range slices.Sorted(maps.Keys(touched)) {
		if !objects[id].live() || objects[id].Kind != record.KindDatabase {
			continue
		}
		rs := rows[id]
		slices.SortFunc(rs, func(a, b markdown.Row) int {
			return cmpTitle(a.Title, a.ID, b.Title, b.ID)
		})
		if err := x.writeDatabase(ctx, conn, id, rs, objects); err != nil {
			return err
		}
	}
	return nil
}

// withLiveDocument runs fn under the object's lock with its stored
// document, unless the object is not stored or is a tombstone (whose
// derived files were removed with the deletion).
func (s *Sink) withLiveDocument(ctx context.Context, conn string, kind record.Kind, id string, fn func(dir, doc string, d *document) error) error {
	return s.withLock(ctx, conn, kind, id, func(dir, doc string) error {
		d, err := readDocument(doc)
		if notExist(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if d.meta.Deleted {
			return nil
		}
		return fn(dir, doc, d)
	})
}

func (x *indexer) writeDatabase(ctx context.Context, conn, id string, rows []markdown.Row, objects map[string]*indexEntry) error {
	s := x.s
	return s.withLiveDocument(ctx, conn, record.KindDatabase, id, func(dir, doc string, d *document) error {
		rec := &linkRecorder{lookup: func(id string) *indexEntry { return objects[id] }}
		r := s.renderer
		r.Links = rec
		r.DataSourceFiles = dataSourceFiles(objects)
		r.FileURL = localFiles(d.meta.Files)
		md, err := r.RenderDatabase(d.meta.Title, record.AppendObject(nil, d.object), rows)
		if err != nil {
			s.log.Warn("filesink: database markdown rendering failed",
				zap.String("connection_id", conn), zap.String("database_id", id), zap.Error(err))
			md = []byte("<!-- notionsync: this database could not be rendered to Markdown; see " + id + ".json -->\n")
		}
		if err := writeFileAtomic(filepath.Join(dir, id+".md"), md, s.fileMode); err != nil {
			return err
		}
		return syncDir(dir)
	})
}

// writeIndexFiles writes manifest.json and index.md.
func (x *indexer) writeIndexFiles(conn string, objects map[string]*indexEntry) error {
	s := x.s
	data, err := encodeManifest(conn, record.NormalizeTime(s.now()), objects, s.markdown)
	if err != nil {
		return err
	}
	dir := filepath.Join(s.root, conn)
	if err := writeFileAtomic(filepath.Join(dir, "manifest.json"), data, s.fileMode); err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(dir, "index.md"), renderIndex(conn, objects, s.markdown), s.fileMode); err != nil {
		return err
	}
	return syncDir(dir)
}

// encodeManifest writes manifest.json with one object per line, sorted by
// id: as readable as indented JSON for grep and diff, and a third of the
// size and encoding time at 10,000 objects.
func encodeManifest(conn string, now time.Time, objects map[string]*indexEntry, md bool) ([]byte, error) {
	head, err := json.Marshal(manifestFile{Format: manifestFormat, ConnectionID: conn, GeneratedAt: now})
	if err != nil {
		return nil, fmt.Errorf("filesink: encode manifest: %w", err)
	}
	// head ends in "\"objects\":null}": replace that by the entries.
	head = head[:len(head)-len("null}")]
	var b bytes.Buffer
	b.Grow(len(objects) * 400)
	b.Write(head)
	b.WriteString("{")
	for i, id := range slices.Sorted(maps.Keys(objects)) {
		c := *objects[id] // shared with the view: copy before setting Path
		c.Path = objectPath(&c, id, md)
		v, err := json.Marshal(&c)
		if err != nil {
			return nil, fmt.Errorf("filesink: encode manifest: %w", err)
		}
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString("\n")
		k, _ := json.Marshal(id) // a string always marshals
		b.Write(k)
		b.WriteString(":")
		b.Write(v)
	}
	b.WriteString("\n}}\n")
	return b.Bytes(), nil
}

// objectPath is the file a reader opens for an object, relative to the
// connection's folder: its Markdown while the object is live, else (a
// tombstone, or Markdown turned off) its JSON document.
func objectPath(e *indexEntry, id string, md bool) string {
	ext := ".json"
	if md && e.live() {
		ext = ".md"
	}
	return dirName(e.Kind) + "/" + id + ext
}

func (s *Sink) manifestPath(conn string) string {
	return filepath.Join(s.root, conn, "manifest.json")
}

// readManifest reads a connection's manifest.json; a missing file yields
// fs.ErrNotExist.
func readManifest(path string) (map[string]*indexEntry, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var mf manifestFile
	if err := json.Unmarshal(data, &mf); err != nil {
		return nil, fmt.Errorf("filesink: corrupt manifest %s (delete it to rebuild it from the documents): %w", path, err)
	}
	if mf.Format != manifestFormat {
		return nil, fmt.Errorf("filesink: manifest %s has format %d, this version reads %d", path, mf.Format, manifestFormat)
	}
	for id, e := range mf.Objects {
		if e == nil {
			delete(mf.Objects, id)
		}
	}
	return mf.Objects, nil
}

func cmpTitle(ta, ia, tb, ib string) int {
	if c := cmpNatural(strings.ToLower(ta), strings.ToLower(tb)); c != 0 {
		return c
	}
	return strings.Compare(ia, ib)
}

// cmpNatural compares strings with runs of digits compared as numbers, so
// that "Page 9" sorts before "Page 10", as a reader expects of a title list.
func cmpNatural(a, b string) int {
	for a != "" && b != "" {
		da, db := digitRun(a), digitRun(b)
		if da > 0 && db > 0 {
			na, nb := strings.TrimLeft(a[:da], "0"), strings.TrimLeft(b[:db], "0")
			if c := cmp.Compare(len(na), len(nb)); c != 0 {
				return c
			}
			if c := strings.Compare(na, nb); c != 0 {
				return c
			}
			a, b = a[da:], b[db:]
			continue
		}
		if a[0] != b[0] {
			return cmp.Compare(a[0], b[0])
		}
		a, b = a[1:], b[1:]
	}
	return cmp.Compare(len(a), len(b))
}

func digitRun(s string) int {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return i
}

// maxIndexDepth bounds the nesting of index.md (deeper objects are listed
// at that depth): Notion's page trees are far shallower, a hostile one is
// not.
const maxIndexDepth = 32

// renderIndex renders index.md: the live objects as a tree by title, each
// under its parent (a row under its database, a database under its host
// page); objects whose parent the mirror does not hold are at the top.
// A page under a block (a column, a toggle) is placed under the page that
// links it.
func renderIndex(conn string, objects map[string]*indexEntry, md bool) []byte {
	linkedBy := make(map[string]string) // id -> a live page linking it
	for _, id := range slices.Sorted(maps.Keys(objects)) {
		if e := objects[id]; e.live() && e.Kind == record.KindPage {
			for _, l := range e.Links {
				if _, ok := linkedBy[l]; !ok && l != id {
					linkedBy[l] = id
				}
			}
		}
	}
	children := make(map[string][]string)
	var roots []string
	live := 0
	for id, e := range objects {
		if !e.live() {
			continue
		}
		live++
		parent := ""
		if e.Parent != nil {
			switch e.Parent.Type {
			case "page_id", "database_id":
				parent = e.Parent.ID
			case "block_id":
				parent = linkedBy[id]
			}
		}
		if parent == "" || parent == id || !objects[parent].live() {
			roots = append(roots, id)
			continue
		}
		children[parent] = append(children[parent], id)
	}
	folded := make(map[string]string, live) // lower-cased titles, computed once
	for id, e := range objects {
		if e.live() {
			folded[id] = strings.ToLower(e.Title)
		}
	}
	byTitle := func(ids []string) {
		slices.SortFunc(ids, func(a, b string) int {
			if c := cmpNatural(folded[a], folded[b]); c != 0 {
				return c
			}
			return strings.Compare(a, b)
		})
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Index of %s\n\n%d pages and databases, by title, nested as in Notion. Every object's id, title, path and parent is in [manifest.json](manifest.json).\n\n", conn, live)
	seen := make(map[string]bool)
	var walk func(id string, depth int)
	walk = func(id string, depth int) {
		if seen[id] {
			return // a parent cycle (hostile data): list each object once
		}
		seen[id] = true
		e := objects[id]
		b.WriteString(strings.Repeat("  ", min(depth, maxIndexDepth)))
		b.WriteString("- ")
		b.WriteString(markdown.Link(orUntitled(e.Title), objectPath(e, id, md)))
		if e.Kind == record.KindDatabase {
			n := 0
			for _, k := range children[id] {
				if objects[k].Kind == record.KindPage {
					n++
				}
			}
			fmt.Fprintf(&b, " (database, %d rows)", n)
		}
		if e.Kind == record.KindDataSource {
			b.WriteString(" (data source")
			if md {
				b.WriteString(", " + markdown.Link("CSV", dirName(e.Kind)+"/"+id+".csv"))
			}
			b.WriteString(")")
		}
		b.WriteString("\n")
		kids := children[id]
		byTitle(kids)
		for _, k := range kids {
			walk(k, depth+1)
		}
	}
	byTitle(roots)
	for _, id := range roots {
		walk(id, 0)
	}
	// Objects only reachable through a cycle of parents.
	rest := slices.Collect(maps.Keys(children))
	slices.Sort(rest)
	for _, p := range rest {
		for _, id := range children[p] {
			if !seen[id] {
				walk(id, 0)
			}
		}
	}
	return []byte(b.String())
}

func orUntitled(s string) string {
	if strings.TrimSpace(s) == "" {
		return "Untitled"
	}
	return strings.ReplaceAll(s, "\n", " ")
}
