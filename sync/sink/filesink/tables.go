package filesink

// Data source tables: data_sources/<id>.md (a Markdown table of the data
// source's live rows, the title linking to each row's page) and
// data_sources/<id>.csv (the same rows as CSV). They are written by the
// index flush, like the database Markdown: a flush rewrites the tables of
// the data sources whose schema or one of whose rows changed since the
// last flush (writes within Options.IndexDelay share one rewrite), and
// never rescans the folder: rows are found in the connection's view (each
// entry names its data source), and their property values come from a
// per-connection cache that PutPage fills, keyed by the stored version. A
// row missing from the cache (written by another process, or before this
// one started) is read from its document once. BenchmarkDataSourceFlush
// measures a flush at 10,000 rows.

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"go.uber.org/zap"

	"github.com/notionsync/notionsync/sync/markdown"
	"github.com/notionsync/notionsync/sync/sink/record"
)

// cachedRow is a row's "properties" at a stored version.
type cachedRow struct {
	version    record.Version
	properties json.RawMessage
}

// noteRow remembers the properties of a row just stored at version v, so
// that its data source's table is rendered without reading the document.
func (x *indexer) noteRow(conn, id string, v record.Version, properties json.RawMessage) {
	c := x.conn(conn)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rows == nil {
		c.rows = make(map[string]cachedRow)
	}
	if old, ok := c.rows[id]; ok && !v.Supersedes(old.version) {
		return
	}
	c.rows[id] = cachedRow{version: v, properties: bytes.Clone(properties)}
}

// rowSource returns the data source a row entry belongs to: the one it
// names, or, for a row stored without one (synced with Notion-Version
// 2022-06-28), its database's only live data source.
func rowSource(e *indexEntry, sole map[string]string) string {
	if e.DataSource != "" {
		return e.DataSource
	}
	if e.Parent != nil && e.Parent.Type == "database_id" {
		return sole[e.Parent.ID]
	}
	return ""
}

// soleSources maps each database with exactly one live data source to it.
func soleSources(objects map[string]*indexEntry) map[string]string {
	count := make(map[string]int)
	sole := make(map[string]string)
	for id, e := range objects {
		if e.Kind == record.KindDataSource && e.live() && e.Parent != nil {
			count[e.Parent.ID]++
			sole[e.Parent.ID] = id
		}
	}
	for db, n := range count {
		if n != 1 {
			delete(sole, db)
		}
	}
	return sole
}

// writeDataSources writes the tables of every live data source that
// pending touches (the data source itself, or one of its rows, live or
// deleted: a tombstoned row leaves the table).
func (x *indexer) writeDataSources(ctx context.Context, conn string, c *connIndex, objects map[string]*indexEntry, pending map[string]bool) error {
	sole := soleSources(objects)
	touched := make(map[string]bool)
	for id := range pending {
		e := objects[id]
		switch {
		case e == nil:
		case e.Kind == record.KindDataSource:
			touched[id] = true
		case e.Kind == record.KindPage:
			if ds := rowSource(e, sole); ds != "" {
				touched[ds] = true
			}
		}
	}
	c.mu.Lock()
	for ds, linked := range c.tableLinks {
		for id := range pending {
			if linked[id] {
				touched[ds] = true
				break
			}
		}
	}
	c.mu.Unlock()
	if len(touched) == 0 {
		return nil
	}
	rows := make(map[string][]markdown.DataRow)
	for id, e := range objects {
		if e.Kind != record.KindPage || !e.live() {
			continue
		}
		if ds := rowSource(e, sole); touched[ds] {
			rows[ds] = append(rows[ds], markdown.DataRow{ID: id, Title: e.Title})
		}
	}
	if c.rendered == nil {
		c.rendered = make(map[string]*renderedRow)
	}
	for _, id := range slices.Sorted(maps.Keys(touched)) {
		if !objects[id].live() {
			continue
		}
		dsVersion := objects[id].version()
		rs := rows[id]
		slices.SortFunc(rs, func(a, b markdown.DataRow) int { return cmpTitle(a.Title, a.ID, b.Title, b.ID) })
		fresh := make(map[string]*renderedRow)
		for i := range rs {
			v := objects[rs[i].ID].version()
			if rr := c.rendered[rs[i].ID]; rr.valid(v, id, dsVersion, pending) {
				rs[i].Rendered = &rr.row
				fresh[rs[i].ID] = rr
				continue
			}
			rr := &renderedRow{version: v, source: id, sourceVersion: dsVersion}
			rs[i].Rendered = &rr.row
			rs[i].Properties = x.rowProperties(conn, c, rs[i].ID, v)
			fresh[rs[i].ID] = rr
		}
		if err := x.writeDataSource(ctx, conn, c, id, rs, objects, fresh); err != nil {
			return err
		}
	}
	return nil
}

// renderedRow is a row's rendering in its data source's table, cached
// across flushes (guarded by connIndex.flushMu: only a flush reads or
// writes it). It is reused while the row, its data source and every
// object it links are unchanged (none of them pending).
type renderedRow struct {
	version       record.Version
	source        string
	sourceVersion record.Version
	links         []string
	row           markdown.RenderedRow
}

func (rr *renderedRow) valid(v record.Version, source string, sourceVersion record.Version, pending map[string]bool) bool {
	if rr == nil || rr.source != source || rr.version.Compare(v) != 0 || rr.sourceVersion.Compare(sourceVersion) != 0 ||
		rr.row.MD == "" || rr.row.CSV == nil {
		return false
	}
	for _, id := range rr.links {
		if pending[id] {
			return false
		}
	}
	return true
}

// rowProperties returns a row's properties at version v: from the cache,
// else from its document (which then fills the cache). A row whose
// document cannot be read is listed by title with empty cells.
func (x *indexer) rowProperties(conn string, c *connIndex, id string, v record.Version) json.RawMessage {
	c.mu.Lock()
	cr, ok := c.rows[id]
	c.mu.Unlock()
	if ok && cr.version.Compare(v) == 0 {
		return cr.properties
	}
	_, doc := x.s.path(conn, record.KindPage, id)
	d, err := readDocument(doc)
	if err != nil {
		x.s.log.Warn("filesink: row left without values in its data source table", zap.String("connection_id", conn), zap.String("page_id", id), zap.Error(err))
		return nil
	}
	props := bytes.Clone(record.Lookup(d.object, "properties"))
	x.noteRow(conn, id, d.meta.state().Version, props)
	return props
}

// tableFiles returns the Renderer.FileURL of a data source's table: its
// own icon and cover (links), and the files its rows' files properties
// show, found by key in the connection's key index (a row's files are
// stored before the row, so a row in the table has them). Lookups are
// memoised for the one rendering.
func (s *Sink) tableFiles(conn string, links []record.FileLink) func(string) string {
	own := localFiles(links)
	dir := s.filesDir(conn)
	memo := make(map[string]string)
	return func(u string) string {
		if own != nil {
			if l := own(u); l != "" {
				return l
			}
		}
		key := record.FileKey(u)
		if l, ok := memo[key]; ok {
			return l
		}
		var target string
		if b, err := os.ReadFile(keyFile(dir, key)); err == nil {
			var l record.FileLink
			if json.Unmarshal(b, &l) == nil && record.ValidFileLink(l) && l.Key == key {
				target = "../files/" + l.Name()
			}
		}
		memo[key] = target
		return target
	}
}

func (x *indexer) writeDataSource(ctx context.Context, conn string, c *connIndex, id string, rows []markdown.DataRow, objects map[string]*indexEntry, fresh map[string]*renderedRow) error {
	s := x.s
	return s.withLiveDocument(ctx, conn, record.KindDataSource, id, func(dir, doc string, d *document) error {
		links := &tableLinks{objects: objects, rows: make(map[string][]string)}
		r := s.renderer
		r.Links = links
		r.UserName = s.userNames(conn)
		r.RowStart = func(id string) { links.cur = id }
		r.FileURL = s.tableFiles(conn, d.meta.Files)
		md, csv, err := r.RenderDataSourceFiles(d.meta.Title, record.AppendObject(nil, d.object), rows)
		if err != nil {
			s.log.Warn("filesink: data source table rendering failed",
				zap.String("connection_id", conn), zap.String("data_source_id", id), zap.Error(err))
			md, csv = []byte("<!-- notionsync: this data source could not be rendered to Markdown; see "+id+".json -->\n"), nil
		}
		linked := make(map[string]bool)
		for rid, rr := range fresh {
			if l, ok := links.rows[rid]; ok {
				rr.links = l
			}
			for _, l := range rr.links {
				linked[l] = true
			}
			c.rendered[rid] = rr
		}
		for rid, rr := range c.rendered { // rows that left the table
			if rr.source == id && fresh[rid] == nil {
				delete(c.rendered, rid)
			}
		}
		c.mu.Lock()
		if c.tableLinks == nil {
			c.tableLinks = make(map[string]map[string]bool)
		}
		c.tableLinks[id] = linked
		c.mu.Unlock()
		if csv != nil {
			if err := writeFileAtomic(filepath.Join(dir, id+".csv"), csv, s.fileMode); err != nil {
				return err
			}
		}
		if err := writeFileAtomic(filepath.Join(dir, id+".md"), md, s.fileMode); err != nil {
			return err
		}
		return syncDir(dir)
	})
}

// tableLinks is the markdown.Links of a data source table: like
// linkRecorder, but it keeps the linked ids in a set (a table of 10,000
// rows links 10,000 pages and more), so that a flush rewrites the table
// when one of them comes or goes.
type tableLinks struct {
	objects map[string]*indexEntry
	cur     string              // the row being rendered (markdown.Renderer.RowStart)
	rows    map[string][]string // row id -> the ids its cells link
}

func (l *tableLinks) resolve(id string, kind record.Kind) (markdown.Target, bool) {
	n, err := record.NormalizeID(id)
	if err != nil {
		return markdown.Target{}, false
	}
	if !slices.Contains(l.rows[l.cur], n) { // a row links a handful
		l.rows[l.cur] = append(l.rows[l.cur], n)
	}
	e := l.objects[n]
	if !e.live() || e.Kind != kind {
		t := markdown.Target{}
		if e != nil {
			t.Title = e.Title
		}
		return t, false
	}
	return markdown.Target{Href: "../" + dirName(kind) + "/" + n + ".md", Title: e.Title}, true
}

func (l *tableLinks) Page(id string) (markdown.Target, bool) { return l.resolve(id, record.KindPage) }
func (l *tableLinks) Database(id string) (markdown.Target, bool) {
	return l.resolve(id, record.KindDatabase)
}

// dataSourceFiles links a database's Markdown to its data sources' files.
func dataSourceFiles(objects map[string]*indexEntry) func(id string) (markdown.DataSourceFile, bool) {
	return func(id string) (markdown.DataSourceFile, bool) {
		n, err := record.NormalizeID(id)
		if err != nil {
			return markdown.DataSourceFile{}, false
		}
		if e := objects[n]; !e.live() || e.Kind != record.KindDataSource {
			return markdown.DataSourceFile{}, false
		}
		base := "../" + dirName(record.KindDataSource) + "/" + n
		return markdown.DataSourceFile{Markdown: base + ".md", CSV: base + ".csv"}, true
	}
}
