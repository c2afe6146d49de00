package filesink_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/notionsync/notionsync/sync/sink"
	"github.com/notionsync/notionsync/sync/sink/filesink"
	"github.com/notionsync/notionsync/sync/sink/sinktest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func open(t testing.TB, root string) *filesink.Sink {
	t.Helper()
	s, err := filesink.Open(root, filesink.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	sinktest.Run(t, func(t *testing.T) sinktest.Store { return open(t, t.TempDir()) })
}

func TestFileGC(t *testing.T) {
	sinktest.RunFileGC(t, func(t *testing.T, now func() time.Time) sinktest.FileStore {
		s, err := filesink.Open(t.TempDir(), filesink.Options{Now: now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestImplementsSink(t *testing.T) {
	var _ sink.Sink = (*filesink.Sink)(nil)
	var _ sink.Reader = (*filesink.Sink)(nil)
}

func readJSON(t *testing.T, path string) map[string]json.RawMessage {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m
}

func TestLayout(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s := open(t, root)
	p := sinktest.NewPage(sinktest.PageID(1), "Launch", sinktest.Base, sinktest.Base.Add(time.Minute))
	if _, err := s.PutPage(ctx, p); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, sinktest.Conn, "pages")
	doc := filepath.Join(dir, p.ID+".json")
	data, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(data), "{\n  \"_notionsync\": {") {
		t.Errorf("document does not start with the metadata:\n%.80s", data)
	}
	m := readJSON(t, doc)
	var meta struct {
		SyncedAt       time.Time `json:"synced_at"`
		LastEditedTime time.Time `json:"last_edited_time"`
		Deleted        bool      `json:"deleted"`
		Unshared       bool      `json:"unshared"`
	}
	if err := json.Unmarshal(m["_notionsync"], &meta); err != nil {
		t.Fatal(err)
	}
	if !meta.SyncedAt.Equal(p.SyncedAt) || !meta.LastEditedTime.Equal(p.LastEditedTime) || meta.Deleted || meta.Unshared {
		t.Errorf("metadata %+v", meta)
	}
	// Every member of the page object is kept, plus the block tree.
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(p.Object, &obj); err != nil {
		t.Fatal(err)
	}
	for k, v := range obj {
		if !sinktest.JSONEqual(t, m[k], v) {
			t.Errorf("member %q: %s, want %s", k, m[k], v)
		}
	}
	var blocks []map[string]json.RawMessage
	if err := json.Unmarshal(m["blocks"], &blocks); err != nil || len(blocks) != len(p.Blocks) {
		t.Fatalf("blocks: %v %s", err, m["blocks"])
	}
	if _, ok := blocks[1]["children"]; !ok {
		t.Error("nested block has no children member")
	}
	md, err := os.ReadFile(filepath.Join(dir, p.ID+".md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(md), "# Launch\n") || !strings.Contains(string(md), "- item\n\n  nested") {
		t.Errorf("markdown:\n%s", md)
	}
	if err := s.DeletePage(ctx, sinktest.Conn, p.ID, sinktest.Base.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, p.ID+".md")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("markdown of a deleted page still there: %v", err)
	}
	db := sinktest.NewDatabase("a1b2c3d4-0000-4000-8000-000000000002", "Tasks", sinktest.Base, sinktest.Base)
	if _, err := s.PutDatabase(ctx, db); err != nil {
		t.Fatal(err)
	}
	if m := readJSON(t, filepath.Join(root, sinktest.Conn, "databases", db.ID+".json")); m["properties"] == nil || m["_notionsync"] == nil {
		t.Errorf("database document: %v", m)
	}
	ds := sinktest.NewDataSource("da7a5000-0000-4000-8000-000000000001", db.ID, "Tasks", sinktest.Base, sinktest.Base)
	if _, err := s.PutDataSource(ctx, ds); err != nil {
		t.Fatal(err)
	}
	dm := readJSON(t, filepath.Join(root, sinktest.Conn, "data_sources", ds.ID+".json"))
	var dsMeta struct {
		Kind       string `json:"kind"`
		DatabaseID string `json:"database_id"`
		ParentType string `json:"parent_type"`
	}
	if err := json.Unmarshal(dm["_notionsync"], &dsMeta); err != nil {
		t.Fatal(err)
	}
	if dm["properties"] == nil || dsMeta.Kind != "data_source" || dsMeta.DatabaseID != db.ID || dsMeta.ParentType != "database_id" {
		t.Errorf("data source document: meta %+v, %v", dsMeta, dm)
	}
	if _, err := os.Stat(filepath.Join(root, sinktest.Conn, "data_sources", ds.ID+".md")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a data source got a Markdown file: %v", err)
	}
	assertNoTempFiles(t, root)
}

func TestMarkdownFailureKeepsJSON(t *testing.T) {
	root := t.TempDir()
	s := open(t, root)
	p := sinktest.NewPage(sinktest.PageID(2), "x", sinktest.Base, sinktest.Base)
	p.Blocks[0].Raw = json.RawMessage(`{"id":"` + p.Blocks[0].ID + `","type":"paragraph","paragraph":{"rich_text":5}}`)
	if w, err := s.PutPage(context.Background(), p); err != nil || !w {
		t.Fatalf("PutPage: %v %v", w, err)
	}
	md, err := os.ReadFile(filepath.Join(root, sinktest.Conn, "pages", p.ID+".md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(md), "could not be rendered") {
		t.Errorf("markdown: %s", md)
	}
	got, _, err := s.GetPage(context.Background(), sinktest.Conn, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	sinktest.SameBlocks(t, got.Blocks, p.Blocks)
}

func TestNothingOutsideRoot(t *testing.T) {
	parent := t.TempDir()
	root := filepath.Join(parent, "root")
	s := open(t, root)
	ctx := context.Background()
	for _, id := range []string{"../escape", "../../escape", "/tmp/escape"} {
		p := sinktest.NewPage(id, "x", sinktest.Base, sinktest.Base)
		if _, err := s.PutPage(ctx, p); !errors.Is(err, sink.ErrInvalidID) {
			t.Errorf("id %q: %v", id, err)
		}
		p = sinktest.NewPage(sinktest.PageID(3), "x", sinktest.Base, sinktest.Base)
		p.ConnectionID = id
		if _, err := s.PutPage(ctx, p); !errors.Is(err, sink.ErrInvalidID) {
			t.Errorf("connection %q: %v", id, err)
		}
	}
	entries, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "root" {
		t.Errorf("files created next to the root: %v", entries)
	}
}

func assertNoTempFiles(t *testing.T, root string) {
	t.Helper()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.Contains(d.Name(), ".tmp-") {
			t.Errorf("temporary file left behind: %s", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// monotonicReader reads every JSON document under root and fails on any
// partial or invalid one, or on one whose stored version went backwards
// since it last read it.
type monotonicReader struct {
	seen map[string]sink.Version
}

func (r *monotonicReader) readAll(t *testing.T, root string) int {
	t.Helper()
	if r.seen == nil {
		r.seen = make(map[string]sink.Version)
	}
	n := 0
	_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(path) != ".json" || strings.HasPrefix(d.Name(), ".") {
			return nil
		}
		data, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			t.Errorf("read %s: %v", path, err)
			return nil
		}
		var doc struct {
			Meta struct {
				EditedAt   time.Time `json:"version_edited_at"`
				ObservedAt time.Time `json:"version_observed_at"`
			} `json:"_notionsync"`
		}
		if err := json.Unmarshal(data, &doc); err != nil {
			t.Errorf("partial or invalid document %s (%d bytes): %v", path, len(data), err)
			return nil
		}
		v := sink.Version{EditedAt: doc.Meta.EditedAt, ObservedAt: doc.Meta.ObservedAt}
		if prev, ok := r.seen[path]; ok && v.Compare(prev) < 0 {
			t.Errorf("%s went back from version %v to %v", path, prev, v)
		}
		r.seen[path] = v
		n++
		return nil
	})
	return n
}

// versions returns every (last_edited, synced) pair the writers use, and
// the newest.
func versions() (all [][2]time.Time, newest [2]time.Time) {
	for i := range 12 {
		for j := range 4 {
			v := [2]time.Time{sinktest.Base.Add(time.Duration(i) * time.Minute), sinktest.Base.Add(time.Duration(i)*time.Minute + time.Duration(j)*time.Second)}
			all = append(all, v)
			newest = v
		}
	}
	return all, newest
}

const pagesPerWriter = 2

// writeAll writes every version of every page in a random order from
// several goroutines.
func writeAll(ctx context.Context, s *filesink.Sink, seed uint64) error {
	all, _ := versions()
	type job struct {
		page int
		v    [2]time.Time
	}
	var jobs []job
	for page := range pagesPerWriter {
		for _, v := range all {
			jobs = append(jobs, job{page, v})
		}
	}
	r := rand.New(rand.NewPCG(seed, seed))
	r.Shuffle(len(jobs), func(i, j int) { jobs[i], jobs[j] = jobs[j], jobs[i] })
	ch := make(chan job)
	errs := make(chan error, 4)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for j := range ch {
				p := sinktest.NewPage(sinktest.PageID(100+j.page), j.v[1].Format(time.RFC3339), j.v[0], j.v[1])
				if _, err := s.PutPage(ctx, p); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for _, j := range jobs {
		ch <- j
	}
	close(ch)
	wg.Wait()
	close(errs)
	return <-errs
}

func checkNewest(t *testing.T, root string) {
	t.Helper()
	s := open(t, root)
	_, newest := versions()
	for page := range pagesPerWriter {
		id := sinktest.PageID(100 + page)
		p, st, err := s.GetPage(context.Background(), sinktest.Conn, id)
		if err != nil {
			t.Fatal(err)
		}
		if !st.Version.EditedAt.Equal(newest[0]) || !st.Version.ObservedAt.Equal(newest[1]) || p.Title != newest[1].Format(time.RFC3339) {
			t.Errorf("page %s: version %v title %q, want %v", id, st.Version, p.Title, newest)
		}
		md, err := os.ReadFile(filepath.Join(root, sinktest.Conn, "pages", id+".md"))
		if err != nil {
			t.Fatal(err)
		}
		if want := "# " + p.Title + "\n"; !strings.HasPrefix(string(md), want) {
			t.Errorf("markdown of %s does not match its JSON: %.60q", id, md)
		}
	}
	assertNoTempFiles(t, root)
}

func TestConcurrentGoroutinesWithReaders(t *testing.T) {
	root := t.TempDir()
	ctx := context.Background()
	done := make(chan struct{})
	var readers sync.WaitGroup
	reads := 0
	readers.Go(func() {
		var r monotonicReader
		for {
			select {
			case <-done:
				return
			default:
				reads += r.readAll(t, root)
			}
		}
	})
	// Two sinks on one root behave like two processes inside one.
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for w := range 2 {
		wg.Go(func() {
			s, err := filesink.Open(root, filesink.Options{})
			if err != nil {
				errs <- err
				return
			}
			defer s.Close()
			errs <- writeAll(ctx, s, uint64(w))
		})
	}
	wg.Wait()
	close(done)
	readers.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if reads == 0 {
		t.Log("reader never saw a document (writers were fast)")
	}
	checkNewest(t, root)
}

const helperEnv = "FILESINK_TEST_WRITER_ROOT"

// TestHelperWriter is not a test of its own: TestConcurrentProcesses runs
// the test binary again with helperEnv set, and this function then writes
// every version of the shared pages.
func TestHelperWriter(t *testing.T) {
	root := os.Getenv(helperEnv)
	if root == "" {
		t.Skip("helper process for TestConcurrentProcesses")
	}
	seed, err := strconv.ParseUint(os.Getenv(helperEnv+"_SEED"), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	s := open(t, root)
	if err := writeAll(context.Background(), s, seed); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	root := t.TempDir()
	var cmds []*exec.Cmd
	var outs []*strings.Builder
	for w := range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperWriter$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), helperEnv+"="+root, fmt.Sprintf("%s_SEED=%d", helperEnv, w+1))
		out := &strings.Builder{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
		outs = append(outs, out)
	}
	done := make(chan struct{})
	var reader sync.WaitGroup
	reader.Go(func() {
		var r monotonicReader
		for {
			select {
			case <-done:
				return
			default:
				r.readAll(t, root)
			}
		}
	})
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("writer %d: %v\n%s", i, err, outs[i])
		}
	}
	close(done)
	reader.Wait()
	if t.Failed() {
		return
	}
	for i, out := range outs {
		if !strings.Contains(out.String(), "--- PASS: TestHelperWriter") {
			t.Errorf("writer %d did not run its writes:\n%s", i, out)
		}
	}
	checkNewest(t, root)
}

func BenchmarkFileSinkPutPage(b *testing.B) {
	s := open(b, b.TempDir())
	ctx := context.Background()
	p := sinktest.NewPage(sinktest.PageID(1), "bench", sinktest.Base, sinktest.Base)
	// A page of realistic size: 200 paragraphs.
	for i := range 200 {
		p.Blocks = append(p.Blocks, sink.Block{ID: fmt.Sprintf("b10c%04x-1111-4222-8333-000000000000", i), Type: "paragraph",
			Raw: json.RawMessage(fmt.Sprintf(`{"object":"block","id":"b10c%04x-1111-4222-8333-000000000000","type":"paragraph","has_children":false,`+
				`"paragraph":{"rich_text":[{"type":"text","text":{"content":"Paragraph %d of the benchmark page.","link":null},"plain_text":"Paragraph %d of the benchmark page.","href":null}],"color":"default"}}`, i, i, i))})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		p.SyncedAt = sinktest.Base.Add(time.Duration(i) * time.Millisecond)
		if w, err := s.PutPage(ctx, p); err != nil || !w {
			b.Fatalf("PutPage: %v %v", w, err)
		}
	}
}

// A confirmed tombstone removes the page's Markdown and keeps the JSON
// document as the tombstone record, with its reason.
func TestConfirmedTombstoneRemovesMarkdown(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s := open(t, root)
	p := sinktest.NewPage(sinktest.PageID(70), "Gone", sinktest.Base, sinktest.Base.Add(time.Minute))
	if _, err := s.PutPage(ctx, p); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, sinktest.Conn, "pages")
	if _, err := os.Stat(filepath.Join(dir, p.ID+".md")); err != nil {
		t.Fatal(err)
	}
	if err := s.Tombstone(ctx, sinktest.Conn, sink.KindPage, p.ID, sink.ReasonUnshared, sinktest.Base.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, p.ID+".md")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("markdown of a confirmed-gone page still there: %v", err)
	}
	m := readJSON(t, filepath.Join(dir, p.ID+".json"))
	var meta struct {
		Deleted bool   `json:"deleted"`
		Reason  string `json:"deleted_reason"`
	}
	if err := json.Unmarshal(m["_notionsync"], &meta); err != nil || !meta.Deleted || meta.Reason != "unshared" {
		t.Errorf("tombstone record: %s (%v)", m["_notionsync"], err)
	}
	if m["properties"] == nil {
		t.Error("tombstone record lost the stored content")
	}
}
