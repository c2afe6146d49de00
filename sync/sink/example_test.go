package sink_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/notionsync/notionsync/sync/sink"
)

// A sync job builds a Page from the raw JSON Notion returned and hands it to
// the sink; an older copy arriving later is rejected.
func ExampleOpen() {
	dir, err := os.MkdirTemp("", "notionsync-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	ctx := context.Background()
	s, err := sink.Open(ctx, "file://"+dir, sink.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	pageJSON := json.RawMessage(`{"object":"page","id":"59833787-2cf9-4fdf-8782-e53db20768a5",
		"last_edited_time":"2024-03-02T17:45:00.000Z","parent":{"type":"workspace","workspace":true},
		"archived":false,"properties":{"title":{"id":"title","type":"title","title":[{"plain_text":"Roadmap"}]}}}`)
	blockJSON := json.RawMessage(`{"object":"block","id":"b10c0001-1111-4222-8333-000000000001","type":"paragraph",
		"has_children":false,"paragraph":{"rich_text":[{"plain_text":"Ship the sink."}]}}`)
	block, err := sink.BlockFromRaw(blockJSON)
	if err != nil {
		log.Fatal(err)
	}
	fetchedAt := time.Date(2024, 3, 2, 17, 46, 0, 0, time.UTC)
	page, err := sink.PageFromObject("conn1", pageJSON, []sink.Block{block}, fetchedAt)
	if err != nil {
		log.Fatal(err)
	}
	written, err := s.PutPage(ctx, page)
	fmt.Println("written:", written, err)

	stale := *page
	stale.LastEditedTime = page.LastEditedTime.Add(-time.Hour)
	written, err = s.PutPage(ctx, &stale)
	fmt.Println("stale written:", written, err)

	md, err := os.ReadFile(dir + "/conn1/pages/" + page.ID + ".md")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(string(md))
	// Output:
	// written: true <nil>
	// stale written: false <nil>
	// # Roadmap
	//
	// Ship the sink.
}
