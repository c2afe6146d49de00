package markdown

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/notionsync/notionsync/sync/sink/record"
)

// Renderer renders pages to Markdown. The zero value links child pages and
// databases to notion.so.
type Renderer struct {
	// PageURL returns the link target for a page id (child_page,
	// link_to_page, relation properties). Default: the page on notion.so.
	PageURL func(id string) string
	// DatabaseURL returns the link target for a database id. Default: the
	// database on notion.so.
	DatabaseURL func(id string) string
	// Links, when set, resolves links to pages and databases instead of
	// PageURL and DatabaseURL: a link to an object it does not hold becomes
	// plain text (see links.go).
	Links Links
	// UserName resolves a user id to the user's name (from the synced
	// users list): Notion gives integrations partial users ({object, id})
	// in people values, created_by / last_edited_by and user mentions.
	// A name the object itself carries wins; a user neither knows is shown
	// by its email, the mention's plain text, or else its id. Default: no
	// resolution.
	UserName func(id string) (name string, ok bool)
	// FileURL returns the link target for a Notion-hosted file (type
	// "file") by its URL as Notion returned it: the local copy, or "" to
	// keep Notion's URL (signed, dead an hour later). External files keep
	// their URL. Default: Notion's URL.
	FileURL func(notionURL string) string
	// DataSourceFiles, when set, gives the files of a database's data
	// sources, which RenderDatabase then links (ok false: not held).
	DataSourceFiles func(id string) (f DataSourceFile, ok bool)
	// RowStart, when set, is called before a data source row is rendered
	// (once per row and file), so that a Links can tell which row links
	// what.
	RowStart func(id string)
}

// hostedFile returns the link target of a Notion-hosted file's URL.
func (r *Renderer) hostedFile(u string) string {
	if r.FileURL != nil {
		if local := r.FileURL(u); local != "" {
			return local
		}
	}
	return u
}

// Render renders a page with the zero Renderer. See Renderer.Render.
func Render(title string, properties json.RawMessage, blocks []record.Block) ([]byte, error) {
	var r Renderer
	return r.Render(title, properties, blocks)
}

// Render renders a page: title (the page's plain-text title; when empty the
// title property is used), properties (the page object's "properties"
// member, may be nil) and its block tree (each Block's Raw is the block
// object as Notion returned it).
func (r *Renderer) Render(title string, properties json.RawMessage, blocks []record.Block) ([]byte, error) {
	return r.RenderPage(title, properties, nil, nil, blocks)
}

// RenderPage is Render with the page's icon and cover (the page object's
// "icon" and "cover" members, either may be nil), shown as images under the
// title like a database's: a Notion-hosted one links the local copy
// (FileURL), an external one its URL, an emoji icon nothing. An icon or
// cover that does not decode is left out rather than failing the page.
func (r *Renderer) RenderPage(title string, properties, iconJSON, coverJSON json.RawMessage, blocks []record.Block) ([]byte, error) {
	rows, propTitle, err := r.properties(properties)
	if err != nil {
		return nil, err
	}
	if title == "" {
		title = propTitle
	}
	if title == "" {
		title = "Untitled"
	}
	var out bytes.Buffer
	out.WriteString("# ")
	out.WriteString(escapeLineStart(escapeText(strings.ReplaceAll(title, "\n", " "))))
	out.WriteString("\n")
	r.writeImages(&out, pageImages(iconJSON, coverJSON))
	if len(rows) > 0 {
		out.WriteString("\n| Property | Value |\n| --- | --- |\n")
		for _, row := range rows {
			fmt.Fprintf(&out, "| %s | %s |\n", row[0], row[1])
		}
	}
	lines, err := r.blocks(blocks, 0)
	if err != nil {
		return nil, err
	}
	if len(lines) > 0 {
		out.WriteString("\n")
		for _, l := range lines {
			out.WriteString(l)
			out.WriteString("\n")
		}
	}
	return bytes.ReplaceAll(out.Bytes(), []byte{0}, []byte("\uFFFD")), nil
}

func (r *Renderer) pageURL(id string) string {
	if r.PageURL != nil {
		return linkTarget(r.PageURL(id))
	}
	return notionURL(id)
}

func (r *Renderer) databaseURL(id string) string {
	if r.DatabaseURL != nil {
		return linkTarget(r.DatabaseURL(id))
	}
	return notionURL(id)
}

// maxIndentDepth bounds nesting: children deeper than this are rendered
// without further indentation (or quoting), so that a hostile tree cannot
// make the output quadratic in its depth.
const maxIndentDepth = 32

var typeName = regexp.MustCompile(`^[a-z0-9_]{1,64}$`)

// safeType returns t if it can be echoed inside an HTML comment.
func safeType(t string) string {
	if typeName.MatchString(t) {
		return t
	}
	return "invalid-type"
}

// block is the decoded part of one block that rendering needs.
type block struct {
	id, typ  string
	p        payload
	children []record.Block
	// transcript is the payload of a meeting_notes (transcription) block,
	// whose "title" is rich text, not the string of child_page's.
	transcript *transcript
}

// transcript is the part of a meeting_notes / transcription block Render
// reads.
type transcript struct {
	Title []richText `json:"title"`
}

// payload is the union of the type-specific members Render reads.
type payload struct {
	RichText        []richText   `json:"rich_text"`
	Text            []richText   `json:"text"` // name before API 2022-02-22
	Checked         bool         `json:"checked"`
	Language        string       `json:"language"`
	Caption         []richText   `json:"caption"`
	Icon            *icon        `json:"icon"`
	URL             string       `json:"url"`
	Expression      string       `json:"expression"`
	Title           string       `json:"title"`
	Type            string       `json:"type"`
	Name            string       `json:"name"`
	External        *fileRef     `json:"external"`
	File            *fileRef     `json:"file"`
	HasColumnHeader bool         `json:"has_column_header"`
	TableWidth      int          `json:"table_width"`
	Cells           [][]richText `json:"cells"`
	PageID          string       `json:"page_id"`
	DatabaseID      string       `json:"database_id"`
	SyncedFrom      *struct {
		BlockID string `json:"block_id"`
	} `json:"synced_from"`
	ListStartIndex *int `json:"list_start_index"`
}

func (p *payload) text() []richText {
	if p.RichText != nil {
		return p.RichText
	}
	return p.Text
}

type fileRef struct {
	URL string `json:"url"`
}

// pageImages decodes a page's icon and cover; one that does not decode is
// nil.
func pageImages(iconJSON, coverJSON json.RawMessage) objectImages {
	var o objectImages
	for _, f := range []struct {
		raw json.RawMessage
		dst **icon
	}{{iconJSON, &o.Icon}, {coverJSON, &o.Cover}} {
		if len(f.raw) == 0 {
			continue
		}
		var v icon
		if json.Unmarshal(f.raw, &v) == nil {
			*f.dst = &v
		}
	}
	return o
}

type icon struct {
	Type     string   `json:"type"`
	Emoji    string   `json:"emoji"`
	External *fileRef `json:"external"`
	File     *fileRef `json:"file"`
}

// blockJSON decodes a block object in one pass: its id, its type and the
// payload of every block type Render knows (only the one named by the type
// is present in a well-formed block).
type blockJSON struct {
	ID               string      `json:"id"`
	Type             string      `json:"type"`
	Paragraph        *payload    `json:"paragraph"`
	Heading1         *payload    `json:"heading_1"`
	Heading2         *payload    `json:"heading_2"`
	Heading3         *payload    `json:"heading_3"`
	Heading4         *payload    `json:"heading_4"`
	Template         *payload    `json:"template"`
	MeetingNotes     *transcript `json:"meeting_notes"`
	Transcription    *transcript `json:"transcription"`
	BulletedListItem *payload    `json:"bulleted_list_item"`
	NumberedListItem *payload    `json:"numbered_list_item"`
	ToDo             *payload    `json:"to_do"`
	Toggle           *payload    `json:"toggle"`
	Quote            *payload    `json:"quote"`
	Callout          *payload    `json:"callout"`
	Code             *payload    `json:"code"`
	Image            *payload    `json:"image"`
	File             *payload    `json:"file"`
	PDF              *payload    `json:"pdf"`
	Video            *payload    `json:"video"`
	Audio            *payload    `json:"audio"`
	Bookmark         *payload    `json:"bookmark"`
	Embed            *payload    `json:"embed"`
	LinkPreview      *payload    `json:"link_preview"`
	Equation         *payload    `json:"equation"`
	Table            *payload    `json:"table"`
	TableRow         *payload    `json:"table_row"`
	ChildPage        *payload    `json:"child_page"`
	ChildDatabase    *payload    `json:"child_database"`
	SyncedBlock      *payload    `json:"synced_block"`
	LinkToPage       *payload    `json:"link_to_page"`
}

// payloadOf returns the payload member named typ, or nil.
func (j *blockJSON) payloadOf(typ string) *payload {
	switch typ {
	case "paragraph":
		return j.Paragraph
	case "heading_1":
		return j.Heading1
	case "heading_2":
		return j.Heading2
	case "heading_3":
		return j.Heading3
	case "heading_4":
		return j.Heading4
	case "template":
		return j.Template
	case "bulleted_list_item":
		return j.BulletedListItem
	case "numbered_list_item":
		return j.NumberedListItem
	case "to_do":
		return j.ToDo
	case "toggle":
		return j.Toggle
	case "quote":
		return j.Quote
	case "callout":
		return j.Callout
	case "code":
		return j.Code
	case "image":
		return j.Image
	case "file":
		return j.File
	case "pdf":
		return j.PDF
	case "video":
		return j.Video
	case "audio":
		return j.Audio
	case "bookmark":
		return j.Bookmark
	case "embed":
		return j.Embed
	case "link_preview":
		return j.LinkPreview
	case "equation":
		return j.Equation
	case "table":
		return j.Table
	case "table_row":
		return j.TableRow
	case "child_page":
		return j.ChildPage
	case "child_database":
		return j.ChildDatabase
	case "synced_block":
		return j.SyncedBlock
	case "link_to_page":
		return j.LinkToPage
	}
	return nil
}

func decodeBlock(b *record.Block) (block, error) {
	out := block{id: b.ID, typ: b.Type, children: b.Children}
	raw := bytes.TrimSpace(b.Raw)
	if len(raw) == 0 {
		return out, nil
	}
	var j blockJSON
	if err := json.Unmarshal(raw, &j); err != nil {
		return block{}, fmt.Errorf("markdown: block %q: %w", truncate(b.ID), err)
	}
	if out.typ == "" {
		out.typ = j.Type
	}
	if out.id == "" {
		out.id = j.ID
	}
	if p := j.payloadOf(out.typ); p != nil {
		out.p = *p
	}
	switch out.typ {
	case "meeting_notes":
		out.transcript = j.MeetingNotes
	case "transcription":
		out.transcript = j.Transcription
	}
	return out, nil
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// listKind tells which list a block belongs to ("" for none).
func listKind(typ string) string {
	switch typ {
	case "bulleted_list_item", "to_do":
		return "bullet"
	case "numbered_list_item":
		return "number"
	}
	return ""
}

// blocks renders sibling blocks to lines (without indentation).
func (r *Renderer) blocks(bs []record.Block, depth int) ([]string, error) {
	var out []string
	prevList := ""
	number := 0
	for i := range bs {
		b, err := decodeBlock(&bs[i])
		if err != nil {
			return nil, err
		}
		r.resolveBlock(&b)
		kind := listKind(b.typ)
		if kind == "number" {
			if prevList != "number" {
				number = 1
				if b.p.ListStartIndex != nil && *b.p.ListStartIndex > 0 && *b.p.ListStartIndex < 1e9 {
					number = *b.p.ListStartIndex
				}
			} else {
				number++
			}
		}
		lines, err := r.block(&b, depth, number)
		if err != nil {
			return nil, err
		}
		if len(lines) == 0 {
			continue
		}
		// Blocks are separated by a blank line, except items of one list.
		if len(out) > 0 && (kind == "" || kind != prevList) {
			out = append(out, "")
		}
		out = append(out, lines...)
		prevList = kind
	}
	return out, nil
}

// children renders a block's children, or nothing when it has none.
func (r *Renderer) children(b *block, depth int) ([]string, error) {
	if len(b.children) == 0 {
		return nil, nil
	}
	return r.blocks(b.children, depth+1)
}

// block renders one block to lines. number is its position in a numbered
// list.
func (r *Renderer) block(b *block, depth, number int) ([]string, error) {
	kids, err := r.children(b, depth)
	if err != nil {
		return nil, err
	}
	p := &b.p
	switch b.typ {
	case "paragraph":
		lines := hardBreaks(inlineLines(p.text()))
		if len(lines) == 1 && lines[0] == "" {
			lines = nil
		}
		return joinBlank(lines, kids), nil
	case "heading_1", "heading_2", "heading_3", "heading_4":
		level := int(b.typ[len(b.typ)-1]-'0') + 1
		head := strings.Repeat("#", level) + " " + inline(p.text(), " ")
		return joinBlank([]string{strings.TrimRight(head, " ")}, kids), nil
	case "bulleted_list_item":
		return listItem("- ", inlineLines(p.text()), kids, depth), nil
	case "to_do":
		box := "- [ ] "
		if p.Checked {
			box = "- [x] "
		}
		return listItem(box, inlineLines(p.text()), kids, depth), nil
	case "numbered_list_item":
		return listItem(fmt.Sprintf("%d. ", number), inlineLines(p.text()), kids, depth), nil
	case "toggle", "template":
		// A template block is a button whose children are what it
		// inserts: shown folded, like a toggle.
		out := []string{"<details>", "<summary>" + htmlEscape(plain(p.text())) + "</summary>"}
		if len(kids) > 0 {
			out = append(out, "")
			out = append(out, kids...)
		}
		return append(out, "", "</details>"), nil
	case "quote":
		return quoted(hardBreaks(inlineLines(p.text())), kids, depth), nil
	case "callout":
		lines := hardBreaks(inlineLines(p.text()))
		if p.Icon != nil && p.Icon.Emoji != "" && len(lines) > 0 {
			lines[0] = escapeText(p.Icon.Emoji) + " " + lines[0]
		}
		return quoted(lines, kids, depth), nil
	case "code":
		return joinBlank(codeBlock(plain(p.text()), p.Language), captionLines(p.Caption)), nil
	case "divider":
		return []string{"---"}, nil
	case "equation":
		return []string{"$$", strings.ReplaceAll(p.Expression, "\x00", "\uFFFD"), "$$"}, nil
	case "image":
		alt := escapeText(strings.ReplaceAll(plain(p.Caption), "\n", " "))
		return joinBlank([]string{"![" + alt + "](" + linkTarget(r.fileURL(p)) + ")"}, kids), nil
	case "file", "pdf", "video", "audio":
		name := p.Name
		var caption []string
		if name == "" {
			name = plain(p.Caption)
		} else {
			caption = captionLines(p.Caption) // the name is the link; keep the caption too
		}
		if name == "" {
			name = b.typ
		}
		return joinBlank(joinBlank([]string{link(name, r.fileURL(p))}, caption), kids), nil
	case "meeting_notes", "transcription":
		var title []string
		if b.transcript != nil {
			title = hardBreaks(inlineLines(b.transcript.Title))
			if len(title) == 1 && title[0] == "" {
				title = nil
			}
		}
		return joinBlank(title, kids), nil
	case "bookmark", "embed", "link_preview":
		label := plain(p.Caption)
		if label == "" {
			label = p.URL
		}
		return joinBlank([]string{link(label, p.URL)}, kids), nil
	case "table":
		return r.table(b)
	case "table_row":
		return []string{tableRow(p.Cells, len(p.Cells))}, nil
	case "child_page":
		return []string{r.pageLink(orUntitled(p.Title), "", b.id)}, nil
	case "child_database":
		return []string{r.databaseLink(orUntitled(p.Title), "", b.id)}, nil
	case "link_to_page":
		switch {
		case p.PageID != "":
			return []string{r.pageLink("", "Linked page", p.PageID)}, nil
		case p.DatabaseID != "":
			return []string{r.databaseLink("", "Linked database", p.DatabaseID)}, nil
		}
		return []string{"<!-- link to page -->"}, nil
	case "column_list", "column", "tab":
		return kids, nil
	case "synced_block":
		if len(kids) == 0 && p.SyncedFrom != nil {
			return []string{"<!-- synced block from " + safeID(p.SyncedFrom.BlockID) + " -->"}, nil
		}
		return kids, nil
	case "table_of_contents", "breadcrumb":
		return []string{"<!-- " + b.typ + " -->"}, nil
	}
	return joinBlank([]string{"<!-- unsupported block: " + safeType(b.typ) + " -->"}, kids), nil
}

var idChars = regexp.MustCompile(`^[0-9a-fA-F-]{1,36}$`)

func safeID(id string) string {
	if idChars.MatchString(id) {
		return id
	}
	return "?"
}

func orUntitled(s string) string {
	if strings.TrimSpace(s) == "" {
		return "Untitled"
	}
	return s
}

func (r *Renderer) fileURL(p *payload) string {
	switch {
	case p.Type == "file" && p.File != nil:
		return r.hostedFile(p.File.URL)
	case p.External != nil:
		return p.External.URL
	case p.File != nil:
		return r.hostedFile(p.File.URL)
	}
	return p.URL
}

// link renders [label](url); label is plain text.
func link(label, u string) string {
	label = escapeText(strings.ReplaceAll(label, "\n", " "))
	if u == "" {
		return label
	}
	return "[" + label + "](" + linkTarget(u) + ")"
}

func captionLines(c []richText) []string {
	if len(c) == 0 {
		return nil
	}
	return hardBreaks(inlineLines(c))
}

// hardBreaks ends every line but the last with a Markdown hard break.
func hardBreaks(lines []string) []string {
	for i := 0; i < len(lines)-1; i++ {
		lines[i] += `\`
	}
	return lines
}

// joinBlank joins two groups of lines with a blank line.
func joinBlank(a, b []string) []string {
	switch {
	case len(a) == 0:
		return b
	case len(b) == 0:
		return a
	}
	out := make([]string, 0, len(a)+len(b)+1)
	out = append(out, a...)
	out = append(out, "")
	return append(out, b...)
}

// listItem renders a list item: marker + text, children indented under it
// (below maxIndentDepth; deeper, they follow the item unindented).
func listItem(marker string, text, kids []string, depth int) []string {
	text = hardBreaks(text)
	if depth >= maxIndentDepth {
		return joinBlank([]string{marker + strings.Join(text, " ")}, kids)
	}
	pad := strings.Repeat(" ", len(marker))
	out := make([]string, 0, len(text)+len(kids)+1)
	for i, l := range text {
		if i == 0 {
			out = append(out, strings.TrimRight(marker+l, " "))
		} else {
			out = append(out, indent(pad, l))
		}
	}
	if len(kids) > 0 && listKind(firstKind(kids)) == "" {
		out = append(out, "")
	}
	for _, l := range kids {
		out = append(out, indent(pad, l))
	}
	return out
}

// firstKind guesses the list kind of rendered child lines from their first
// line's marker.
func firstKind(lines []string) string {
	l := lines[0]
	switch {
	case strings.HasPrefix(l, "- "), l == "-":
		return "bulleted_list_item"
	}
	i := 0
	for i < len(l) && l[i] >= '0' && l[i] <= '9' {
		i++
	}
	if i > 0 && strings.HasPrefix(l[i:], ".") {
		return "numbered_list_item"
	}
	return ""
}

func indent(pad, line string) string {
	if line == "" {
		return ""
	}
	return pad + line
}

// quoted renders text and children as a blockquote (below maxIndentDepth;
// deeper, children follow the quote unquoted).
func quoted(text, kids []string, depth int) []string {
	if depth >= maxIndentDepth {
		return joinBlank(quoted(text, nil, 0), kids)
	}
	lines := joinBlank(text, kids)
	out := make([]string, len(lines))
	for i, l := range lines {
		if l == "" {
			out[i] = ">"
		} else {
			out[i] = "> " + l
		}
	}
	return out
}

func codeBlock(code, language string) []string {
	fence := strings.Repeat("`", max(3, longestRun(code, '`')+1))
	lang := strings.ToLower(strings.TrimSpace(language))
	if lang == "plain text" {
		lang = ""
	}
	lang = strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\n', '\r':
			return '-'
		case '`', 0:
			return -1
		}
		return r
	}, lang)
	code = strings.ReplaceAll(strings.ReplaceAll(code, "\r\n", "\n"), "\x00", "\uFFFD")
	out := []string{fence + lang}
	out = append(out, strings.Split(code, "\n")...)
	return append(out, fence)
}

func (r *Renderer) table(b *block) ([]string, error) {
	var rows [][][]richText
	width := b.p.TableWidth
	if width < 0 || width > 1000 {
		width = 0
	}
	for i := range b.children {
		row, err := decodeBlock(&b.children[i])
		if err != nil {
			return nil, err
		}
		r.resolveBlock(&row)
		if row.typ != "table_row" {
			continue
		}
		rows = append(rows, row.p.Cells)
		width = max(width, len(row.p.Cells))
	}
	if width == 0 {
		return []string{"<!-- empty table -->"}, nil
	}
	var out []string
	if b.p.HasColumnHeader && len(rows) > 0 {
		out = append(out, tableRow(rows[0], width))
		rows = rows[1:]
	} else {
		out = append(out, "|"+strings.Repeat("  |", width))
	}
	out = append(out, "|"+strings.Repeat(" --- |", width))
	for _, row := range rows {
		out = append(out, tableRow(row, width))
	}
	return out, nil
}

func tableRow(cells [][]richText, width int) string {
	var b strings.Builder
	b.WriteString("|")
	for i := 0; i < width; i++ {
		b.WriteString(" ")
		if i < len(cells) {
			b.WriteString(cell(inline(cells[i], "<br>")))
		}
		b.WriteString(" |")
	}
	return b.String()
}

// cell makes an inline rendering safe inside a table cell: every pipe not
// already escaped (code spans keep theirs raw) is escaped, as GFM requires
// even inside code spans.
func cell(s string) string {
	var b strings.Builder
	backslashes := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '|' && backslashes%2 == 0 {
			b.WriteByte('\\')
		}
		if c == '\\' {
			backslashes++
		} else {
			backslashes = 0
		}
		b.WriteByte(c)
	}
	return strings.TrimSpace(b.String())
}
