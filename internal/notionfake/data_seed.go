package notionfake

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"time"
)

// This file seeds and edits the data API's content. Every method is safe for
// concurrent use, also while requests are served; callbacks (EditPage,
// ViewPage) run with the Server's lock held and must not call the Server.

// SeedSpec describes the content SeedWorkspace generates. The zero value
// seeds nothing.
type SeedSpec struct {
	// Seed makes the content deterministic: the same Seed, workspace id, spec
	// and clock give the same ids, titles, blocks and timestamps.
	Seed int64
	// Pages is the number of regular pages (database rows not included).
	Pages int
	// NestedPages is how many of Pages are child pages of an earlier page
	// (shown in its content as a child_page block); the others are at the
	// workspace's top level. Clamped to Pages-1.
	NestedPages int
	// BlocksPerPage is the number of top-level blocks of each page, cycling
	// through paragraphs, headings, lists, to_do, code, toggle, table (with
	// table_row children), quote, callout and divider. child_page and
	// child_database blocks come on top.
	BlocksPerPage int
	// BlockDepth is how many levels of blocks a page has: 1 (also 0) is
	// flat; from 2 on, toggles and some list items and to_dos have children.
	// A table's rows do not count as a level.
	BlockDepth int
	// ChildrenPerBlock is the number of children of a block that has some.
	// Default 2.
	ChildrenPerBlock int
	// Databases is the number of databases, each in one of the pages (a
	// child_database block), or at the top level when Pages is 0. Their
	// schema has a title, rich_text, number, select, multi_select, date,
	// checkbox, url, people and relation property.
	Databases int
	// RowsPerDatabase is the number of rows of each database, with values
	// for every property.
	RowsPerDatabase int
	// BlocksPerRow is the number of top-level blocks of each row's content.
	BlocksPerRow int
	// UnknownBlocks adds a block of a type the 2022-06-28 API clients do not
	// know ("ai_block", with an arbitrary payload) to each page.
	UnknownBlocks bool
	// History spreads created and last-edited times over [now-History, now];
	// zero puts everything at now. Times are rounded down to the minute.
	History time.Duration
	// HugePages adds that many huge top-level pages, on top of Pages, after
	// everything else (so adding them changes none of the other content).
	// A huge page holds, first, a paragraph of HugeTextBytes of text split
	// into rich text items of at most 2,000 characters (Notion's limit per
	// text object), then HugePageBlocks-1 further top-level blocks: flat
	// text blocks (and an unknown block type with UnknownBlocks), with a
	// toggle every 250 blocks holding three blocks, one of them a toggle
	// with two (three levels). Reading one takes HugePageBlocks/100 block
	// children requests for the top level (page_size is at most 100) plus
	// two per toggle.
	HugePages int
	// HugePageBlocks is the number of top-level blocks of a huge page.
	// Default 2500: 25 paginated block children requests.
	HugePageBlocks int
	// HugeTextBytes is the length of a huge page's long paragraph. Default
	// 100,000 (50 rich text items); negative: no long paragraph.
	HugeTextBytes int
	// MultiSourceDatabases gives the first that many databases (clamped to
	// Databases) a second data source holding RowsPerDatabase rows of its
	// own, generated after everything else (so the rest of the content is
	// the same as without it). Under API version 2022-06-28 querying such
	// a database answers 400 validation_error; 2025-09-03 reads both data
	// sources. Default 0: every database has one data source.
	MultiSourceDatabases int
	// ManyReferenceRows gives the first that many rows of each database
	// ManyReferences (30) relation, people and rich_text items, more than
	// the ReferenceLimit (25) a page object carries: the database's other
	// rows first, then ids of pages the integration cannot see. It draws
	// nothing from the random stream, so the rest of the content is the
	// same as without it. Default 0.
	ManyReferenceRows int
	// Users adds that many people to the workspace (besides its owner and
	// the integration's bot) plus one other bot: every third person has no
	// email (as an integration without the user-email capability sees
	// them) and every second no avatar. Pages and rows are then created and
	// last edited by them in turn, each row's people value names one, and
	// each page and row gets one more top-level paragraph mentioning its
	// creator. Ids and names are derived from the workspace id and draws
	// nothing from the random stream, so the rest of the content is the
	// same as without it. Default 0.
	Users int
	// EveryType adds, after everything else, a top-level page holding one
	// block of every block type and a database whose row holds one value
	// of every property value type the official SDK types list
	// (EveryBlockType, EveryPropertyType), nested where Notion nests them
	// (data_everytype.go). SeedResult.EveryType names them.
	EveryType bool
	// Files gives the content Notion-hosted files (served by the fake behind
	// signed, expiring URLs; see data_files.go), generated after everything
	// else and drawing nothing from the random stream, so the rest of the
	// content is the same as without it. Every page and row gets the
	// workspace's one logo as its icon (one file used many times); every
	// other page a cover of its own; every page an image, pdf, file, video
	// and audio block of its own and an external image block (a link, not a
	// hosted file); every database an "Attachments" files property whose
	// value in each row is a file of the row's own and the logo.
	Files bool
}

// Huge page defaults and shape (SeedSpec.HugePages).
const (
	DefaultHugePageBlocks = 2500
	DefaultHugeTextBytes  = 100_000
	// MaxRichTextContent is the most characters Notion puts in one rich
	// text object's text.content; longer text comes as several objects.
	MaxRichTextContent = 2000
	// hugeToggleEvery is the spacing of the nested toggles of a huge page.
	hugeToggleEvery = 250
)

// SeedResult lists what SeedWorkspace created.
type SeedResult struct {
	// EveryType is what SeedSpec.EveryType added (nil without it).
	EveryType *EveryTypeResult
	// UserIDs are the users SeedSpec.Users added, the people first, the
	// bot last.
	UserIDs     []string
	WorkspaceID string
	// PageIDs are the regular pages, parents before their children.
	PageIDs []string
	// DatabaseIDs are the databases, in creation order.
	DatabaseIDs []string
	// RowIDs are all rows, database by database; RowsByDatabase groups them.
	RowIDs         []string
	RowsByDatabase map[string][]string
	// DataSourceIDs lists each database's data sources, its first one
	// first; RowsByDataSource groups the rows by data source.
	DataSourceIDs    map[string][]string
	RowsByDataSource map[string][]string
	// BlockCount is the number of blocks in all created pages and rows,
	// nested ones, table rows, child_page and child_database blocks
	// included: what walking every page's block children returns.
	BlockCount int
	// HugePageIDs are the huge pages (SeedSpec.HugePages), also the last
	// entries of PageIDs.
	HugePageIDs []string
	// Files are the distinct hosted files SeedSpec.Files created (each file
	// once, however many objects show it); FileBlockIDs the file blocks.
	Files        []HostedFile
	FileBlockIDs []string
}

// SeedWorkspace adds generated content to workspace workspaceID, created
// (for the OAuth part too) if needed; "" creates a workspace with a random
// id, whose content is then not reproducible. Connect to it with
// SeedConnection.
func (s *Server) SeedWorkspace(workspaceID string, spec SeedSpec) SeedResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.wsDataLocked(workspaceID)
	h := fnv.New64a()
	_, _ = h.Write([]byte(d.id))
	g := &seedGen{
		d:     d,
		files: s.filesLocked(),
		rng:   rand.New(rand.NewPCG(uint64(spec.Seed), h.Sum64())),
		spec:  spec,
		now:   minute(s.now()),
	}
	if g.spec.ChildrenPerBlock <= 0 {
		g.spec.ChildrenPerBlock = 2
	}
	return g.run()
}

// seedGen generates a SeedSpec's content.
type seedGen struct {
	d     *wsData
	files *filesState
	rng   *rand.Rand
	spec  SeedSpec
	now   time.Time
	res   SeedResult
}

func (g *seedGen) run() SeedResult {
	g.res = SeedResult{WorkspaceID: g.d.id, RowsByDatabase: make(map[string][]string),
		DataSourceIDs: make(map[string][]string), RowsByDataSource: make(map[string][]string)}
	var pages []*Page
	nested := min(g.spec.NestedPages, g.spec.Pages-1)
	for i := range g.spec.Pages {
		parent := WorkspaceParent()
		var parentPage *Page
		if i >= g.spec.Pages-nested && i > 0 {
			parentPage = pages[g.rng.IntN(i)]
			parent = PageParent(parentPage.ID)
		}
		p := g.page(parent, fmt.Sprintf("Page %d %s", i+1, g.words(2)), g.spec.BlocksPerPage)
		if g.spec.UnknownBlocks {
			p.Blocks = append(p.Blocks, g.unknownBlock(p.CreatedTime))
		}
		if parentPage != nil {
			parentPage.Blocks = append(parentPage.Blocks, &Block{ID: p.ID, Type: "child_page"})
		}
		pages = append(pages, p)
		g.res.PageIDs = append(g.res.PageIDs, p.ID)
	}
	var dbs []*database
	for i := range g.spec.Databases {
		parent := WorkspaceParent()
		var parentPage *Page
		if len(pages) > 0 {
			parentPage = pages[g.rng.IntN(len(pages))]
			parent = PageParent(parentPage.ID)
		}
		created, edited := g.times()
		db := newDatabase(g.d, g.uuid(), parent, fmt.Sprintf("Database %d %s", i+1, g.words(1)), created, edited, g.shortID)
		if parentPage != nil {
			parentPage.Blocks = append(parentPage.Blocks, &Block{ID: db.id, Type: "child_database"})
		}
		dbs = append(dbs, db)
		g.res.DatabaseIDs = append(g.res.DatabaseIDs, db.id)
	}
	for _, db := range dbs {
		var prev string
		for j := range g.spec.RowsPerDatabase {
			row := g.page(DatabaseParent(db.id), fmt.Sprintf("Row %d %s", j+1, g.words(2)), g.spec.BlocksPerRow)
			row.Properties = g.rowValues(db, prev)
			prev = row.ID
			g.res.RowIDs = append(g.res.RowIDs, row.ID)
			g.res.RowsByDatabase[db.id] = append(g.res.RowsByDatabase[db.id], row.ID)
			g.res.RowsByDataSource[db.sources[0].id] = append(g.res.RowsByDataSource[db.sources[0].id], row.ID)
		}
	}
	for i := range g.spec.HugePages {
		p := g.hugePage(fmt.Sprintf("Huge page %d %s", i+1, g.words(2)))
		g.res.PageIDs = append(g.res.PageIDs, p.ID)
		g.res.HugePageIDs = append(g.res.HugePageIDs, p.ID)
	}
	for _, db := range dbs[:min(max(g.spec.MultiSourceDatabases, 0), len(dbs))] {
		g.addSourceRows(db, db.addSource(), g.spec.RowsPerDatabase)
	}
	for _, db := range dbs {
		if g.spec.ManyReferenceRows > 0 {
			g.seedManyReferences(db, g.res.RowsByDatabase[db.id], g.spec.ManyReferenceRows)
		}
		for _, src := range db.sources {
			g.res.DataSourceIDs[db.id] = append(g.res.DataSourceIDs[db.id], src.id)
		}
	}
	if g.spec.Files {
		g.seedFiles(dbs)
	}
	if g.spec.EveryType {
		g.everyType()
	}
	if g.spec.Users > 0 {
		g.seedUsers(g.spec.Users)
	}
	for _, id := range append(slices.Clone(g.res.PageIDs), g.res.RowIDs...) {
		p := g.d.pages[id]
		g.d.indexPage(p, p.CreatedTime)
		g.res.BlockCount += countVisible(g.d, p.Blocks)
	}
	return g.res
}

// page creates a page with n top-level blocks; the caller indexes it.
func (g *seedGen) page(parent Parent, title string, n int) *Page {
	created, edited := g.times()
	p := &Page{
		ID: g.uuid(), Parent: parent, Title: title, Properties: map[string]any{},
		CreatedTime: created, LastEditedTime: edited,
		seq: g.d.nextSeq(),
	}
	start := g.rng.IntN(len(topLevelKinds))
	for i := range n {
		p.Blocks = append(p.Blocks, g.block(topLevelKinds[(start+i)%len(topLevelKinds)], 1, created))
	}
	g.d.pages[p.ID] = p
	return p
}

// times returns a created and a later last-edited time within History.
func (g *seedGen) times() (created, edited time.Time) {
	if g.spec.History <= 0 {
		return g.now, g.now
	}
	c := g.now.Add(-time.Duration(g.rng.Int64N(int64(g.spec.History) + 1)))
	e := c.Add(time.Duration(g.rng.Int64N(int64(g.now.Sub(c)) + 1)))
	return minute(c), minute(e)
}

var (
	topLevelKinds = []string{
		"paragraph", "heading_1", "bulleted_list_item", "to_do", "code", "toggle", "heading_2",
		"numbered_list_item", "table", "quote", "paragraph", "heading_3", "callout", "divider",
	}
	childKinds = []string{"paragraph", "bulleted_list_item", "numbered_list_item", "to_do", "toggle", "code"}
	lorem      = []string{
		"lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit", "sed", "do",
		"eiusmod", "tempor", "incididunt", "labore", "dolore", "magna", "aliqua", "enim", "minim", "veniam",
	}
	codeLangs = []string{"go", "python", "javascript", "sql", "plain text"}
)

func (g *seedGen) words(n int) string {
	b := make([]byte, 0, n*8)
	for i := range n {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, lorem[g.rng.IntN(len(lorem))]...)
	}
	return string(b)
}

// block generates a block of kind at level (1 = top level).
func (g *seedGen) block(kind string, level int, t time.Time) *Block {
	var b *Block
	nest := 0 // children to generate
	canNest := level < g.spec.BlockDepth
	switch kind {
	case "code":
		b = NewBlock("code", map[string]any{
			"caption": []any{}, "rich_text": RichText("x := " + g.words(3)),
			"language": codeLangs[g.rng.IntN(len(codeLangs))],
		})
	case "divider":
		b = NewBlock("divider", nil)
	case "table":
		const width = 3
		rows := 2 + g.rng.IntN(3)
		b = NewBlock("table", map[string]any{"table_width": width, "has_column_header": true, "has_row_header": false})
		for range rows {
			cells := make([]any, width)
			for c := range cells {
				cells[c] = RichText(g.words(1))
			}
			b.Children = append(b.Children, g.stamp(NewBlock("table_row", map[string]any{"cells": cells}), t))
		}
	default:
		b = TextBlock(kind, g.words(4+g.rng.IntN(8)))
		switch kind {
		case "to_do":
			b.Payload["checked"] = g.rng.IntN(2) == 0
			if canNest && g.rng.IntN(3) == 0 {
				nest = g.spec.ChildrenPerBlock
			}
		case "toggle":
			if canNest {
				nest = g.spec.ChildrenPerBlock
			}
		case "bulleted_list_item", "numbered_list_item":
			if canNest && g.rng.IntN(2) == 0 {
				nest = g.spec.ChildrenPerBlock
			}
		}
	}
	for range nest {
		b.Children = append(b.Children, g.block(childKinds[g.rng.IntN(len(childKinds))], level+1, t))
	}
	return g.stamp(b, t)
}

func (g *seedGen) stamp(b *Block, t time.Time) *Block {
	b.ID = g.uuid()
	b.CreatedTime, b.LastEditedTime = t, t
	return b
}

// hugeKinds are the flat blocks of a huge page.
var hugeKinds = []string{
	"paragraph", "heading_2", "bulleted_list_item", "numbered_list_item", "to_do", "quote",
	"paragraph", "code", "heading_3", "callout", "bulleted_list_item", "divider",
}

// hugePage creates a huge top-level page (SeedSpec.HugePages); the caller
// indexes it.
func (g *seedGen) hugePage(title string) *Page {
	n := cmp.Or(g.spec.HugePageBlocks, DefaultHugePageBlocks)
	textBytes := cmp.Or(g.spec.HugeTextBytes, DefaultHugeTextBytes)
	p := g.page(WorkspaceParent(), title, 0)
	t := p.CreatedTime
	if textBytes > 0 && n > 0 {
		b := NewBlock("paragraph", map[string]any{"rich_text": SplitRichText(g.text(textBytes)), "color": "default"})
		p.Blocks = append(p.Blocks, g.stamp(b, t))
	}
	for i := len(p.Blocks); i < n; i++ {
		if i%hugeToggleEvery == hugeToggleEvery-1 {
			inner := g.stamp(TextBlock("toggle", g.words(3),
				g.stamp(TextBlock("paragraph", g.words(6)), t),
				g.stamp(TextBlock("paragraph", g.words(6)), t)), t)
			p.Blocks = append(p.Blocks, g.stamp(TextBlock("toggle", g.words(3),
				g.stamp(TextBlock("paragraph", g.words(8)), t),
				inner,
				g.stamp(TextBlock("bulleted_list_item", g.words(5)), t)), t))
			continue
		}
		kind := hugeKinds[i%len(hugeKinds)]
		var b *Block
		switch kind {
		case "divider":
			b = NewBlock("divider", nil)
		case "code":
			b = NewBlock("code", map[string]any{"caption": []any{}, "rich_text": RichText("x := " + g.words(3)), "language": "go"})
		default:
			b = TextBlock(kind, g.words(4+g.rng.IntN(8)))
		}
		p.Blocks = append(p.Blocks, g.stamp(b, t))
	}
	if g.spec.UnknownBlocks {
		p.Blocks = append(p.Blocks, g.unknownBlock(t))
	}
	return p
}

// text returns n bytes of words separated by spaces.
func (g *seedGen) text(n int) string {
	b := make([]byte, 0, n+16)
	for len(b) < n {
		if len(b) > 0 {
			b = append(b, ' ')
		}
		b = append(b, lorem[g.rng.IntN(len(lorem))]...)
	}
	return string(b[:n])
}

// SplitRichText returns text as a rich text array the way Notion returns long
// text: plain text runs of at most MaxRichTextContent characters each (an
// empty text gives an empty array).
func SplitRichText(text string) []any {
	out := []any{}
	runes := []rune(text)
	for len(runes) > 0 {
		n := min(len(runes), MaxRichTextContent)
		out = append(out, RichText(string(runes[:n]))[0])
		runes = runes[n:]
	}
	return out
}

func (g *seedGen) unknownBlock(t time.Time) *Block {
	return g.stamp(NewBlock("ai_block", map[string]any{
		"prompt": g.words(3), "answer": RichText(g.words(6)), "model": map[string]any{"name": "fake", "v": 2},
	}), t)
}

// uuid returns a deterministic version-4 UUID.
func (g *seedGen) uuid() string {
	var b [16]byte
	for i := range 2 {
		v := g.rng.Uint64()
		for j := range 8 {
			b[i*8+j] = byte(v >> (8 * j))
		}
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// shortID returns a property or option id like Notion's ("a%3Bx1").
func (g *seedGen) shortID() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, 4)
	for i := range b {
		b[i] = alphabet[g.rng.IntN(len(alphabet))]
	}
	return string(b)
}

// rowValues generates values for every non-title property of db's schema;
// the relation points at prev (the database's previous row) when there is one.
func (g *seedGen) rowValues(db *database, prev string) map[string]any {
	vals := make(map[string]any, len(db.schema))
	for _, ps := range db.schema {
		switch ps.typ {
		case "rich_text":
			vals[ps.name] = RichText(g.words(5))
		case "number":
			vals[ps.name] = float64(g.rng.IntN(10000)) / 10
		case "select":
			opts := ps.config["options"].([]any)
			if g.rng.IntN(5) == 0 {
				vals[ps.name] = nil
			} else {
				vals[ps.name] = opts[g.rng.IntN(len(opts))]
			}
		case "multi_select":
			var chosen []any
			for _, o := range ps.config["options"].([]any) {
				if g.rng.IntN(2) == 0 {
					chosen = append(chosen, o)
				}
			}
			vals[ps.name] = append([]any{}, chosen...)
		case "date":
			day := g.now.AddDate(0, 0, g.rng.IntN(120)-60)
			vals[ps.name] = map[string]any{"start": day.Format(time.DateOnly), "end": nil, "time_zone": nil}
		case "checkbox":
			vals[ps.name] = g.rng.IntN(2) == 0
		case "url":
			if g.rng.IntN(4) == 0 {
				vals[ps.name] = nil
			} else {
				vals[ps.name] = fmt.Sprintf("https://example.com/%s", g.shortID())
			}
		case "people":
			vals[ps.name] = []any{map[string]any{"object": "user", "id": g.d.owner}}
		case "relation":
			if prev == "" {
				vals[ps.name] = []any{}
			} else {
				vals[ps.name] = []any{map[string]any{"id": prev}}
			}
		}
	}
	return vals
}

// newDatabase creates a database with the standard schema (property ids from
// shortID) and registers it in d.
func newDatabase(d *wsData, id string, parent Parent, title string, created, edited time.Time, shortID func() string) *database {
	options := func(names ...string) []any {
		colors := []string{"red", "green", "blue", "yellow", "purple"}
		out := make([]any, len(names))
		for i, n := range names {
			out[i] = map[string]any{"id": shortID(), "name": n, "color": colors[i%len(colors)]}
		}
		return out
	}
	db := &database{
		id: id, parent: parent, title: title,
		createdTime: created, lastEditedTime: edited,
		seq: d.nextSeq(),
		schema: []propertySchema{
			{id: "title", name: "Name", typ: "title", config: map[string]any{}},
			{id: shortID(), name: "Notes", typ: "rich_text", config: map[string]any{}},
			{id: shortID(), name: "Score", typ: "number", config: map[string]any{"format": "number"}},
			{id: shortID(), name: "Status", typ: "select", config: map[string]any{"options": options("Todo", "Doing", "Done")}},
			{id: shortID(), name: "Tags", typ: "multi_select", config: map[string]any{"options": options("alpha", "beta", "gamma", "delta")}},
			{id: shortID(), name: "Due", typ: "date", config: map[string]any{}},
			{id: shortID(), name: "Done", typ: "checkbox", config: map[string]any{}},
			{id: shortID(), name: "Link", typ: "url", config: map[string]any{}},
			{id: shortID(), name: "Owner", typ: "people", config: map[string]any{}},
			{id: shortID(), name: "Related", typ: "relation", config: map[string]any{
				"database_id": id, "type": "single_property", "single_property": map[string]any{}}},
		},
	}
	db.addSource()
	d.dbs[id] = db
	return db
}

// indexPage (re)indexes p's blocks: it assigns ids to new blocks, sets their
// zero times to t, drops nil blocks, and records every block's page and
// parent. child_page and child_database blocks of known objects are not
// indexed (their id is the object's) and their children are ignored.
func (d *wsData) indexPage(p *Page, t time.Time) {
	for _, id := range p.indexed {
		if ref, ok := d.blocks[id]; ok && ref.page == p {
			delete(d.blocks, id)
		}
	}
	p.indexed = p.indexed[:0]
	var walk func(bs []*Block, parent Parent) []*Block
	walk = func(bs []*Block, parent Parent) []*Block {
		bs = slices.DeleteFunc(bs, func(b *Block) bool { return b == nil })
		for _, b := range bs {
			if b.ID == "" {
				b.ID = newUUID()
			} else if id, ok := normalizeID(b.ID); ok {
				b.ID = id
			}
			if b.CreatedTime.IsZero() {
				b.CreatedTime = t
			}
			if b.LastEditedTime.IsZero() {
				b.LastEditedTime = t
			}
			if _, ok := d.pages[b.ID]; ok && b.Type == "child_page" {
				continue
			}
			if _, ok := d.dbs[b.ID]; ok && b.Type == "child_database" {
				continue
			}
			d.blocks[b.ID] = &blockRef{b: b, page: p, parent: parent}
			p.indexed = append(p.indexed, b.ID)
			b.Children = walk(b.Children, Parent{Type: ParentBlock, ID: b.ID})
		}
		return bs
	}
	p.Blocks = walk(p.Blocks, PageParent(p.ID))
}

// lookupPageLocked returns page id of workspace ws. The caller holds s.mu.
func (s *Server) lookupPageLocked(ws, id string) (*wsData, *Page, error) {
	d, err := s.lookupWSLocked(ws)
	if err != nil {
		return nil, nil, err
	}
	nid, _ := normalizeID(id)
	p, ok := d.pages[nid]
	if !ok {
		return nil, nil, fmt.Errorf("%w: page %q in workspace %q", ErrObjectNotFound, id, ws)
	}
	return d, p, nil
}

// EditPage calls f with page pageID of workspace ws, under the Server's lock
// (f must not call the Server), then re-indexes the page's blocks (new
// blocks get ids and the edit's time) and, unless f changed it, sets its
// last_edited_time to now. f cannot change the page's ID or Parent.
func (s *Server) EditPage(ws, pageID string, f func(*Page)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, p, err := s.lookupPageLocked(ws, pageID)
	if err != nil {
		return err
	}
	now := minute(s.now())
	id, parent, edited := p.ID, p.Parent, p.LastEditedTime
	f(p)
	p.ID, p.Parent = id, parent
	if p.LastEditedTime.Equal(edited) {
		p.LastEditedTime = now
	}
	d.indexPage(p, now)
	return nil
}

// ViewPage calls f with page pageID of workspace ws under the Server's lock,
// for assertions; f must neither modify the page nor call the Server.
func (s *Server) ViewPage(ws, pageID string, f func(*Page)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, p, err := s.lookupPageLocked(ws, pageID)
	if err != nil {
		return err
	}
	f(p)
	return nil
}

// TouchPage edits page pageID the way a user typing does: its first
// paragraph (depth first, not inside child pages) gets text, or a paragraph
// with text is appended when it has none; the block's and the page's
// last_edited_time become now (rounded down to the minute, so a second edit
// in the same minute keeps it).
func (s *Server) TouchPage(ws, pageID, text string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, p, err := s.lookupPageLocked(ws, pageID)
	if err != nil {
		return err
	}
	now := minute(s.now())
	if b := firstParagraph(p.Blocks); b != nil {
		if b.Payload == nil {
			b.Payload = map[string]any{}
		}
		b.Payload["rich_text"] = RichText(text)
		b.LastEditedTime = now
	} else {
		p.Blocks = append(p.Blocks, TextBlock("paragraph", text))
	}
	p.LastEditedTime = now
	d.indexPage(p, now)
	return nil
}

func firstParagraph(bs []*Block) *Block {
	for _, b := range bs {
		if b.Type == "paragraph" {
			return b
		}
		if b.Type == "child_page" || b.Type == "child_database" {
			continue
		}
		if found := firstParagraph(b.Children); found != nil {
			return found
		}
	}
	return nil
}

// AddPage creates a page titled title with content blocks under parent: the
// workspace's top level, a page (which gets a child_page block and a new
// last_edited_time) or a database (a row, with empty property values). It
// returns the new page's id.
func (s *Server) AddPage(ws string, parent Parent, title string, blocks ...*Block) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.lookupWSLocked(ws)
	if err != nil {
		return "", err
	}
	p, err := s.addPageLocked(d, parent, title, blocks)
	if err != nil {
		return "", err
	}
	return p.ID, nil
}

// addPageLocked is AddPage. The caller holds s.mu.
func (s *Server) addPageLocked(d *wsData, parent Parent, title string, blocks []*Block) (*Page, error) {
	now := minute(s.now())
	parentPage, err := d.attachParent(&parent)
	if err != nil {
		return nil, err
	}
	p := &Page{
		ID: newUUID(), Parent: parent, Title: title, Properties: map[string]any{},
		CreatedTime: now, LastEditedTime: now, Blocks: blocks, seq: d.nextSeq(),
	}
	d.pages[p.ID] = p
	d.indexPage(p, now)
	if parentPage != nil {
		parentPage.Blocks = append(parentPage.Blocks, &Block{ID: p.ID, Type: "child_page"})
		parentPage.LastEditedTime = now
		d.indexPage(parentPage, now)
	}
	return p, nil
}

// attachParent validates (and normalizes) a new object's parent and returns
// the page that will show it, if any.
func (d *wsData) attachParent(parent *Parent) (*Page, error) {
	switch parent.Type {
	case ParentWorkspace, "":
		*parent = WorkspaceParent()
		return nil, nil
	case ParentPage:
		id, _ := normalizeID(parent.ID)
		p, ok := d.pages[id]
		if !ok {
			return nil, fmt.Errorf("%w: parent page %q", ErrObjectNotFound, parent.ID)
		}
		parent.ID = id
		return p, nil
	case ParentDatabase:
		id, _ := normalizeID(parent.ID)
		if _, ok := d.dbs[id]; !ok {
			return nil, fmt.Errorf("%w: parent database %q", ErrObjectNotFound, parent.ID)
		}
		parent.ID = id
		return nil, nil
	}
	return nil, fmt.Errorf("notionfake: unsupported parent type %q", parent.Type)
}

// AddRow adds a row titled title to database dbID of workspace ws, with
// empty values for the other properties (set them with EditPage), and
// returns its id.
func (s *Server) AddRow(ws, dbID, title string) (string, error) {
	return s.AddPage(ws, DatabaseParent(dbID), title)
}

// AddDatabase creates a database titled title, with the schema SeedWorkspace
// uses, under parent (the workspace or a page, which gets a child_database
// block), and returns its id.
func (s *Server) AddDatabase(ws string, parent Parent, title string) (string, error) {
	return s.addDatabase(ws, parent, title, false)
}

// AddMultiSourceDatabase creates a database like AddDatabase that has more
// than one data source: it is listed and retrieved, but querying it under
// API version 2022-06-28 answers 400 validation_error ("Databases with
// multiple data sources are not supported in this API version...").
func (s *Server) AddMultiSourceDatabase(ws string, parent Parent, title string) (string, error) {
	return s.addDatabase(ws, parent, title, true)
}

func (s *Server) addDatabase(ws string, parent Parent, title string, multi bool) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.lookupWSLocked(ws)
	if err != nil {
		return "", err
	}
	if parent.Type == ParentDatabase {
		return "", fmt.Errorf("notionfake: a database cannot be the parent of a database")
	}
	parentPage, err := d.attachParent(&parent)
	if err != nil {
		return "", err
	}
	now := minute(s.now())
	db := newDatabase(d, newUUID(), parent, title, now, now, func() string { return randomHex(2) })
	if multi {
		db.addSource()
	}
	if parentPage != nil {
		parentPage.Blocks = append(parentPage.Blocks, &Block{ID: db.id, Type: "child_database"})
		parentPage.LastEditedTime = now
		d.indexPage(parentPage, now)
	}
	return db.id, nil
}

// ArchivePage moves page pageID to the trash, as a user deleting it does:
// GET answers it with archived and in_trash true, search, database queries
// and its parent's block children leave it out. Its last_edited_time
// becomes now.
func (s *Server) ArchivePage(ws, pageID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, p, err := s.lookupPageLocked(ws, pageID)
	if err != nil {
		return err
	}
	p.Archived = true
	p.LastEditedTime = minute(s.now())
	return nil
}

// UnsharePage stops sharing page or database id with the integration: it
// and everything inside it answer 404 object_not_found and leave search and
// queries; a child_page block showing it stays in its parent's content.
func (s *Server) UnsharePage(ws, id string) error { return s.setShared(ws, id, false) }

// setShared shares page or database id with the integration, or stops
// sharing it, leaving its last_edited_time alone.
func (s *Server) setShared(ws, id string, shared bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.lookupWSLocked(ws)
	if err != nil {
		return err
	}
	nid, _ := normalizeID(id)
	if p, ok := d.pages[nid]; ok {
		p.unshared = !shared
		return nil
	}
	if db, ok := d.dbs[nid]; ok {
		db.unshared = !shared
		return nil
	}
	return fmt.Errorf("%w: page or database %q in workspace %q", ErrObjectNotFound, id, ws)
}

// HasWorkspace reports whether workspace ws exists: seeded, connected or
// issued a code.
func (s *Server) HasWorkspace(ws string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.workspaces[ws]
	return ok
}

// AllPageIDs returns the ids of the pages, database rows included, that a
// complete sync of workspace ws should hold: shared with the integration
// and not archived. They come in creation order. An unknown workspace has
// none.
func (s *Server) AllPageIDs(ws string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.dataLocked().ws[ws]
	if !ok {
		return nil
	}
	pages := make([]*Page, 0, len(d.pages))
	for _, p := range d.pages {
		if !p.Archived && d.pageReadable(p) {
			pages = append(pages, p)
		}
	}
	slices.SortFunc(pages, func(a, b *Page) int { return cmp.Compare(a.seq, b.seq) })
	ids := make([]string, len(pages))
	for i, p := range pages {
		ids[i] = p.ID
	}
	return ids
}

// PageBlockCount returns the number of blocks a full walk of page pageID's
// block children finds (nested blocks and table rows included; child_page
// and child_database blocks count once, their content not).
func (s *Server) PageBlockCount(ws, pageID string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, p, err := s.lookupPageLocked(ws, pageID)
	if err != nil {
		return 0, err
	}
	return countVisible(d, p.Blocks), nil
}

// countVisible counts blocks the way a full walk of block children sees
// them: child_page and child_database blocks count once, their content not;
// those of archived objects not at all.
func countVisible(d *wsData, bs []*Block) int {
	n := 0
	for _, b := range d.visibleBlocks(bs) {
		n++
		if b.Type != "child_page" && b.Type != "child_database" {
			n += countVisible(d, b.Children)
		}
	}
	return n
}

// PageBlockIDs returns the ids of the blocks PageBlockCount counts, depth
// first in content order.
func (s *Server) PageBlockIDs(ws, pageID string) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, p, err := s.lookupPageLocked(ws, pageID)
	if err != nil {
		return nil, err
	}
	var ids []string
	var walk func([]*Block)
	walk = func(bs []*Block) {
		for _, b := range d.visibleBlocks(bs) {
			ids = append(ids, b.ID)
			if b.Type != "child_page" && b.Type != "child_database" {
				walk(b.Children)
			}
		}
	}
	walk(p.Blocks)
	return ids, nil
}
