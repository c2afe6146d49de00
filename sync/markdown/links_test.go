package markdown_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/notionsync/notionsync/sync/markdown"
	"github.com/notionsync/notionsync/sync/sink/record"
)

// heldLinks holds the pages and databases of a tiny mirror.
type heldLinks map[string]string // id -> title

func (h heldLinks) Page(id string) (markdown.Target, bool) {
	t, ok := h[id]
	return markdown.Target{Href: id + ".md", Title: t}, ok
}

func (h heldLinks) Database(id string) (markdown.Target, bool) {
	t, ok := h[id]
	return markdown.Target{Href: "../databases/" + id + ".md", Title: t}, ok
}

const (
	heldPage   = "11111111-1111-4111-8111-111111111111"
	heldDB     = "22222222-2222-4222-8222-222222222222"
	absentPage = "33333333-3333-4333-8333-333333333333"
	absentDB   = "44444444-4444-4444-8444-444444444444"
)

func mentionJSON(kind, id, plain string) string {
	return `{"type":"mention","mention":{"type":"` + kind + `","` + kind + `":{"id":"` + id + `"}},"plain_text":"` + plain +
		`","href":"https://www.notion.so/` + strings.ReplaceAll(id, "-", "") + `","annotations":{}}`
}

func dateMention(start, end, tz string) string {
	e, z := "null", "null"
	if end != "" {
		e = `"` + end + `"`
	}
	if tz != "" {
		z = `"` + tz + `"`
	}
	return `{"type":"mention","mention":{"type":"date","date":{"start":"` + start + `","end":` + e + `,"time_zone":` + z +
		`}},"plain_text":"` + start + `","href":null,"annotations":{}}`
}

func paragraph(id string, rich ...string) record.Block {
	raw := `{"object":"block","id":"` + id + `","type":"paragraph","paragraph":{"rich_text":[` + strings.Join(rich, ",") + `]}}`
	return record.Block{ID: id, Type: "paragraph", Raw: json.RawMessage(raw)}
}

func rawBlock(id, typ, payload string) record.Block {
	raw := `{"object":"block","id":"` + id + `","type":"` + typ + `","` + typ + `":` + payload + `}`
	return record.Block{ID: id, Type: typ, Raw: json.RawMessage(raw)}
}

func TestLinksResolveToHeldObjectsAndPlainTextOtherwise(t *testing.T) {
	r := markdown.Renderer{Links: heldLinks{heldPage: "Roadmap", heldDB: "Tasks"}}
	blocks := []record.Block{
		paragraph("b0000000-0000-4000-8000-000000000001",
			mentionJSON("page", heldPage, "Roadmap"), mentionJSON("page", absentPage, "Secret plan"),
			mentionJSON("database", heldDB, "Tasks"), mentionJSON("database", absentDB, "Hidden DB")),
		rawBlock(heldPage, "child_page", `{"title":"Roadmap"}`),
		rawBlock(absentPage, "child_page", `{"title":"Gone child"}`),
		rawBlock(heldDB, "child_database", `{"title":"Tasks"}`),
		rawBlock("b0000000-0000-4000-8000-000000000002", "link_to_page", `{"type":"page_id","page_id":"`+heldPage+`"}`),
		rawBlock("b0000000-0000-4000-8000-000000000003", "link_to_page", `{"type":"database_id","database_id":"`+heldDB+`"}`),
		rawBlock("b0000000-0000-4000-8000-000000000004", "link_to_page", `{"type":"page_id","page_id":"`+absentPage+`"}`),
	}
	props := json.RawMessage(`{"Name":{"type":"title","title":[{"type":"text","plain_text":"Row","text":{"content":"Row"}}]},
		"Related":{"type":"relation","relation":[{"id":"` + heldPage + `"},{"id":"` + absentPage + `"}],"has_more":false}}`)
	out, err := r.Render("", props, blocks)
	if err != nil {
		t.Fatal(err)
	}
	got := string(out)
	for _, want := range []string{
		"[Roadmap](" + heldPage + ".md)Secret plan[Tasks](../databases/" + heldDB + ".md)Hidden DB",
		"\n[Roadmap](" + heldPage + ".md)\n",
		"\nGone child\n",
		"\n[Tasks](../databases/" + heldDB + ".md)\n",
		"| Related | [Roadmap](" + heldPage + ".md), " + absentPage + " |",
		"\nLinked page\n", // link_to_page of a page the mirror lacks: its title is unknown
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	// link_to_page of a held object takes the object's title.
	if strings.Count(got, "[Roadmap]("+heldPage+".md)") != 4 || strings.Count(got, "[Tasks](../databases/"+heldDB+".md)") != 3 {
		t.Errorf("held objects are not linked by title everywhere:\n%s", got)
	}
	if strings.Contains(got, "notion.so") || strings.Contains(got, absentPage+".md") || strings.Contains(got, absentDB) {
		t.Errorf("a link leads out of the mirror or to an object it lacks:\n%s", got)
	}
}

func TestDatesAreReadable(t *testing.T) {
	var r markdown.Renderer
	blocks := []record.Block{paragraph("b0000000-0000-4000-8000-000000000001",
		dateMention("2026-12-06T14:05:00.000+00:00", "", ""), `{"type":"text","plain_text":" / ","text":{"content":" / "}}`,
		dateMention("2026-12-06", "2026-12-08", ""), `{"type":"text","plain_text":" / ","text":{"content":" / "}}`,
		dateMention("2026-12-06T09:30:00.000-05:00", "2026-12-06T10:00:00.000-05:00", ""), `{"type":"text","plain_text":" / ","text":{"content":" / "}}`,
		dateMention("2026-12-06T09:30:00.000", "", "America/New_York"))}
	props := json.RawMessage(`{
		"Due":{"type":"date","date":{"start":"2026-12-06T14:05:00.000Z","end":"2026-12-07T08:00:00.000Z","time_zone":null}},
		"Created":{"type":"created_time","created_time":"2026-12-01T10:00:00.000Z"},
		"Edited":{"type":"last_edited_time","last_edited_time":"2026-12-06T14:05:00.000Z"},
		"Odd":{"type":"date","date":{"start":"someday","end":null,"time_zone":null}}}`)
	out, err := r.Render("Dates", props, blocks)
	if err != nil {
		t.Fatal(err)
	}
	got := string(out)
	for _, want := range []string{
		"| Due | 2026-12-06 14:05 UTC → 2026-12-07 08:00 UTC |",
		"| Created | 2026-12-01 10:00 UTC |",
		"| Edited | 2026-12-06 14:05 UTC |",
		"| Odd | someday |", // not a date: kept as written
		"2026-12-06 14:05 UTC / 2026-12-06 → 2026-12-08 / 2026-12-06 09:30 -05:00 → 2026-12-06 10:00 -05:00 / 2026-12-06 09:30 America/New\\_York",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
}

func TestRenderDatabase(t *testing.T) {
	r := markdown.Renderer{Links: heldLinks{heldPage: "Roadmap"}}
	db := json.RawMessage(`{"object":"database","id":"` + heldDB + `",
		"title":[{"type":"text","plain_text":"Tasks","text":{"content":"Tasks"}}],
		"description":[{"type":"text","plain_text":"What we do, see ","text":{"content":"What we do, see "}},` +
		mentionJSON("page", heldPage, "Roadmap") + `],
		"properties":{"Name":{"id":"title","type":"title","title":{}},
			"Stage":{"id":"s","type":"select","select":{"options":[{"name":"Todo"},{"name":"Done"}]}},
			"Due":{"id":"d","type":"date","date":{}}}}`)
	out, err := r.RenderDatabase("", db, []markdown.Row{{ID: heldPage, Title: "Roadmap"}, {ID: absentPage, Title: "Not synced"}})
	if err != nil {
		t.Fatal(err)
	}
	want := "# Tasks\n\nWhat we do, see [Roadmap](" + heldPage + ".md)\n\n## Properties\n\n| Property | Type | Options |\n| --- | --- | --- |\n" +
		"| Name | title |  |\n| Stage | select | Todo, Done |\n| Due | date |  |\n\n## Rows (2)\n\n- [Roadmap](" + heldPage + ".md)\n- Not synced\n"
	if string(out) != want {
		t.Errorf("got:\n%s\nwant:\n%s", out, want)
	}
	if _, err := r.RenderDatabase("", json.RawMessage(`{"properties":[1]}`), nil); err == nil {
		t.Error("a schema that is not an object was accepted")
	}
}

// A page's, a database's and a data source's icon and cover render as images: a
// Notion-hosted one through FileURL (the local copy), an external one as
// its URL, an emoji icon not at all.
func TestSchemaIconAndCover(t *testing.T) {
	const hosted = "https://prod-files-secure.s3.us-west-2.amazonaws.com/ws/f1/cover.png"
	r := markdown.Renderer{FileURL: func(u string) string {
		if record.FileKey(u) == hosted {
			return "../files/abc.png"
		}
		return ""
	}}
	images := `"icon":{"type":"external","external":{"url":"https://example.com/i.svg"}},
		"cover":{"type":"file","file":{"url":"` + hosted + `?X-Amz-Signature=s","expiry_time":"2026-12-06T15:00:00.000Z"}}`
	db, err := r.RenderDatabase("Tasks", json.RawMessage(`{"object":"database",`+images+`}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	ds, err := r.RenderDataSource("Tasks", json.RawMessage(`{"object":"data_source",`+images+`,"properties":{}}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	page, err := r.RenderPage("Tasks", nil,
		json.RawMessage(`{"type":"external","external":{"url":"https://example.com/i.svg"}}`),
		json.RawMessage(`{"type":"file","file":{"url":"`+hosted+`?X-Amz-Signature=s","expiry_time":"2026-12-06T15:00:00.000Z"}}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{string(db), string(ds), string(page)} {
		if !strings.HasPrefix(out, "# Tasks\n\n![icon](https://example.com/i.svg)\n\n![cover](../files/abc.png)\n") {
			t.Errorf("icon and cover not shown after the title:\n%s", out)
		}
	}
	emoji, err := r.RenderDatabase("Tasks", json.RawMessage(`{"icon":{"type":"emoji","emoji":"💡"},"cover":null}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(emoji), "![") {
		t.Errorf("an emoji icon or a null cover rendered an image:\n%s", emoji)
	}
	emojiPage, err := r.RenderPage("Tasks", nil, json.RawMessage(`{"type":"emoji","emoji":"💡"}`), json.RawMessage(`null`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := "# Tasks\n"; string(emojiPage) != want {
		t.Errorf("a page with an emoji icon and no cover rendered %q, want %q", emojiPage, want)
	}
}
