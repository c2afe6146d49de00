package markdown_test

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/notionsync/notionsync/sync/markdown"
)

const dsObject = `{"object":"data_source","title":[{"plain_text":"Team"}],"parent":{"type":"database_id","database_id":"dddddddd-0000-4000-8000-000000000001"},` +
	`"properties":{"Who":{"type":"title","title":{}},"Owner":{"type":"people","people":{}},"Tags":{"type":"multi_select","multi_select":{}},"When":{"type":"date","date":{}}}}`

func dsRow(id, title, owner string) markdown.DataRow {
	props := fmt.Sprintf(`{"Who":{"type":"title","title":[{"plain_text":%q}]},"Owner":{"type":"people","people":[{"object":"user","id":%q}]},`+
		`"Tags":{"type":"multi_select","multi_select":[{"name":"a|b"},{"name":"c"}]},"When":{"type":"date","date":{"start":"2026-12-06T14:05:00.000+00:00","end":"2026-12-07"}}}`, title, owner)
	return markdown.DataRow{ID: id, Title: title, Properties: json.RawMessage(props)}
}

// People are named through UserName and fall back to their id; the CSV
// parses back to the values; a cached rendering is reused as is.
func TestRenderDataSourceUserNamesAndCache(t *testing.T) {
	r := markdown.Renderer{
		PageURL: func(id string) string { return id + ".md" },
		UserName: func(id string) (string, bool) {
			n, ok := map[string]string{"u1": "Ada Lovelace"}[id]
			return n, ok
		},
	}
	rows := []markdown.DataRow{dsRow("p1", "One", "u1"), dsRow("p2", "Two", "u2")}
	md, err := r.RenderDataSource("", json.RawMessage(dsObject), rows)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"# Team\n",
		"| Who | Owner | Tags | When |",
		"| [One](p1.md) | Ada Lovelace | a\\|b, c | 2026-12-06 14:05 UTC → 2026-12-07 |",
		"| [Two](p2.md) | u2 | a\\|b, c |",
	} {
		if !strings.Contains(string(md), want) {
			t.Errorf("lacks %q:\n%s", want, md)
		}
	}
	data, err := r.RenderDataSourceCSV(json.RawMessage(dsObject), rows)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(strings.NewReader(string(data))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(recs); got != "[[Who Owner Tags When] [One Ada Lovelace a|b, c 2026-12-06T14:05:00.000+00:00/2026-12-07] [Two u2 a|b, c 2026-12-06T14:05:00.000+00:00/2026-12-07]]" {
		t.Errorf("CSV %q", recs)
	}

	cached := &markdown.RenderedRow{MD: "| cached |\n", CSV: []string{"c", "c", "c", "c"}}
	fresh := &markdown.RenderedRow{}
	rows[0].Rendered, rows[1].Rendered = cached, fresh
	md, csvData, err := r.RenderDataSourceFiles("", json.RawMessage(dsObject), rows)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(md), "| cached |\n") || !strings.Contains(string(csvData), "c,c,c,c\r\n") {
		t.Errorf("cached rendering not reused:\n%s\n%s", md, csvData)
	}
	if !strings.HasPrefix(fresh.MD, "| [Two](p2.md) | u2 |") || len(fresh.CSV) != 4 || fresh.CSV[0] != "Two" {
		t.Errorf("fresh rendering not filled in: %+v", fresh)
	}
}
