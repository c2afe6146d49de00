package markdown

// This file resolves links to pages and databases (child_page,
// child_database, link_to_page, page and database mentions, relation cells)
// and makes dates readable in rich text. It is kept apart from the block
// rendering so that other rewrites of the same output (files, people) merge
// without touching it.

// Links resolves the pages and databases a page links to. The file sink
// implements it over its manifest, so that links become relative paths to
// the Markdown files it holds.
//
// Implementations are called by one Render at a time per value handed to a
// Renderer; a Links shared by concurrent renders must be safe for that.
type Links interface {
	// Page returns the link target of the page with the given id and its
	// title ("" if unknown); ok is false when the mirror does not hold the
	// page (never synced, not shared, deleted): the link is then rendered
	// as plain text, not as a link that leads nowhere.
	Page(id string) (target Target, ok bool)
	// Database is Page for databases.
	Database(id string) (target Target, ok bool)
}

// Target is where a link to a page or database leads.
type Target struct {
	// Href is the link target, e.g. a path relative to the rendered file.
	Href string
	// Title is the object's plain-text title, "" if unknown.
	Title string
}

// mention is the "mention" member of a rich text element. Only the kinds
// this package resolves are decoded; the others keep Notion's plain_text and
// href.
type mention struct {
	Type string `json:"type"`
	Page *struct {
		ID string `json:"id"`
	} `json:"page"`
	Database *struct {
		ID string `json:"id"`
	} `json:"database"`
	Date *dateValue `json:"date"`
}

// pageLink renders a link to page id. label, when set, is the text (a
// child_page block carries its own title); otherwise the resolved title or,
// without one, fallback.
func (r *Renderer) pageLink(label, fallback, id string) string {
	if r.Links == nil {
		return link(firstNonEmpty(label, fallback, id), r.pageURL(id))
	}
	t, ok := r.Links.Page(id)
	return resolvedLink(label, fallback, id, t, ok)
}

// databaseLink is pageLink for databases.
func (r *Renderer) databaseLink(label, fallback, id string) string {
	if r.Links == nil {
		return link(firstNonEmpty(label, fallback, id), r.databaseURL(id))
	}
	t, ok := r.Links.Database(id)
	return resolvedLink(label, fallback, id, t, ok)
}

func resolvedLink(label, fallback, id string, t Target, ok bool) string {
	text := firstNonEmpty(label, t.Title, fallback, id)
	if !ok || t.Href == "" {
		return link(text, "")
	}
	return link(text, t.Href)
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// resolveBlock rewrites the rich text of a decoded block (text, caption,
// table cells) before rendering.
func (r *Renderer) resolveBlock(b *block) {
	p := &b.p
	p.RichText = r.resolveRichText(p.RichText)
	p.Text = r.resolveRichText(p.Text)
	p.Caption = r.resolveRichText(p.Caption)
	for i := range p.Cells {
		p.Cells[i] = r.resolveRichText(p.Cells[i])
	}
}

// resolveValue rewrites the rich text of a property value.
func (r *Renderer) resolveValue(v *propertyValue) {
	v.Title = r.resolveRichText(v.Title)
	v.RichText = r.resolveRichText(v.RichText)
}

// resolveRichText rewrites mentions in place: a date mention's text becomes
// readable, a page or database mention links to what Links resolves it to,
// or loses its link (Notion's href leads to notion.so, which a reader of the
// mirror may not be allowed to open) when the mirror does not hold it.
// Without Links, page and database mentions keep Notion's href.
func (r *Renderer) resolveRichText(rts []richText) []richText {
	for i := range rts {
		rt := &rts[i]
		if rt.Type != "mention" || rt.Mention == nil {
			continue
		}
		m := rt.Mention
		switch {
		case m.Type == "date" && m.Date != nil && m.Date.Start != "":
			rt.PlainText = readableDate(m.Date)
		case m.Type == "page" && m.Page != nil && r.Links != nil:
			t, ok := r.Links.Page(m.Page.ID)
			rt.Href, rt.PlainText = mentionHref(t, ok), mentionText(rt.PlainText, t, ok)
		case m.Type == "database" && m.Database != nil && r.Links != nil:
			t, ok := r.Links.Database(m.Database.ID)
			rt.Href, rt.PlainText = mentionHref(t, ok), mentionText(rt.PlainText, t, ok)
		}
	}
	return rts
}

// mentionText is the text of a mention: the linked object's current title
// when the mirror holds it (Notion's plain_text is the title when the
// mentioning page was read, stale after a rename), else Notion's text.
func mentionText(plainText string, t Target, ok bool) string {
	if ok && t.Title != "" {
		return t.Title
	}
	return firstNonEmpty(plainText, t.Title, "Untitled")
}

func mentionHref(t Target, ok bool) *string {
	if !ok || t.Href == "" {
		return nil
	}
	h := t.Href
	return &h
}

// Link renders [label](href) with label escaped as plain text (a label
// with no href renders as the text alone). Indexes built outside this
// package (the file sink's index.md) use it to escape titles the same way.
func Link(label, href string) string { return link(label, href) }
