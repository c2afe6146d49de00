package files_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/notionsync/notionsync/sync/files"
	"github.com/notionsync/notionsync/sync/sink/filesink"
	"github.com/notionsync/notionsync/sync/sink/record"
)

func newStore(t testing.TB) *filesink.Sink {
	t.Helper()
	s, err := filesink.Open(t.TempDir(), filesink.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func ref(u string) files.Ref { return files.Ref{Key: record.FileKey(u), URL: u, Name: "f.bin"} }

func TestDownloaderRefusesWhatTheOperatorDidNotAllow(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("hello")) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("internal")) }))
	defer other.Close()
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, other.URL+"/x", http.StatusFound) })
	host := strings.TrimPrefix(srv.URL, "http://")
	store := newStore(t)
	ctx := context.Background()

	for _, tc := range []struct {
		name string
		cfg  files.Config
		url  string
	}{
		{"host not listed", files.Config{AllowHTTP: true, AllowPrivateAddresses: true}, srv.URL + "/ok"},
		{"http without AllowHTTP", files.Config{AllowedHosts: []string{host}, AllowPrivateAddresses: true}, srv.URL + "/ok"},
		{"loopback address", files.Config{AllowedHosts: []string{host}, AllowHTTP: true}, srv.URL + "/ok"},
		{"redirect to another host", files.Config{AllowedHosts: []string{host}, AllowHTTP: true, AllowPrivateAddresses: true}, srv.URL + "/redirect"},
		{"user info", files.Config{AllowedHosts: []string{"127.0.0.1"}, AllowHTTP: true, AllowPrivateAddresses: true}, strings.Replace(srv.URL, "http://", "http://u:p@", 1) + "/ok"},
	} {
		d, err := files.New(tc.cfg)
		if err != nil {
			t.Fatal(err)
		}
		_, err = d.Download(ctx, store, "c", "p", ref(tc.url))
		if !errors.Is(err, files.ErrHostNotAllowed) || !files.Permanent(err) {
			t.Errorf("%s: %v, want ErrHostNotAllowed", tc.name, err)
		}
		if err != nil && strings.Contains(err.Error(), "?") {
			t.Errorf("%s: error shows a query: %v", tc.name, err)
		}
	}
	d, err := files.New(files.Config{AllowedHosts: []string{host}, AllowHTTP: true, AllowPrivateAddresses: true})
	if err != nil {
		t.Fatal(err)
	}
	l, err := d.Download(ctx, store, "c", "p", ref(srv.URL+"/ok?sig=1"))
	if err != nil || l.Size != 5 || !l.Added {
		t.Fatalf("allowed download: %+v %v", l, err)
	}
	if _, err := files.New(files.Config{AllowedHosts: []string{"evil.com/x"}}); err == nil {
		t.Error("a host with a path was accepted")
	}
}

func TestDownloaderCapsAndQuota(t *testing.T) {
	body := strings.Repeat("x", 1000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("chunked") != "" {
			w.(http.Flusher).Flush() // no Content-Length: the cap is found while streaming
		}
		w.Write([]byte(body + r.URL.Path))
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	store := newStore(t)
	ctx := context.Background()
	d, err := files.New(files.Config{AllowedHosts: []string{host}, AllowHTTP: true, AllowPrivateAddresses: true,
		MaxFileBytes: 900, ConnectionQuota: 2100})
	if err != nil {
		t.Fatal(err)
	}
	var le *files.LimitError
	for _, u := range []string{srv.URL + "/a", srv.URL + "/a?chunked=1"} {
		if _, err := d.Download(ctx, store, "c", "p", ref(u)); !errors.As(err, &le) || le.Quota || !errors.Is(err, files.ErrTooLarge) {
			t.Errorf("%s: %v, want the file cap", u, err)
		}
	}
	big, err := files.New(files.Config{AllowedHosts: []string{host}, AllowHTTP: true, AllowPrivateAddresses: true, ConnectionQuota: 2100})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/1", "/2"} {
		if _, err := big.Download(ctx, store, "c", "p", ref(srv.URL+p)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := big.Download(ctx, store, "c", "p", ref(srv.URL+"/3?chunked=1")); !errors.Is(err, files.ErrQuotaExceeded) {
		t.Errorf("past the quota: %v", err)
	}
	if used, _ := store.FileUsage(ctx, "c"); used != 2004 {
		t.Errorf("usage %d, want 2004", used)
	}
}

func TestPageRefs(t *testing.T) {
	obj := []byte(`{"icon":{"type":"file","file":{"url":"https://s.example/a/logo.png?sig=1","expiry_time":"2025-01-01T00:00:00.000Z"}},
	"cover":{"type":"external","external":{"url":"https://x.example/c.png"}},
	"properties":{"F":{"type":"files","files":[{"name":"n.txt","type":"file","file":{"url":"https://s.example/a/n.txt?sig=2","expiry_time":"2025-01-01T00:00:00.000Z"}},
	{"name":"logo","type":"file","file":{"url":"https://s.example/a/logo.png?sig=3","expiry_time":"2025-01-01T00:00:00.000Z"}}]}}}`)
	blk := record.Block{ID: "b1", Type: "image", Raw: []byte(`{"id":"b1","type":"image","image":{"caption":[],"type":"file","file":{"url":"https://s.example/a/i.png?s=1","expiry_time":"2025-01-01T00:00:00.000Z"}}}`)}
	refs := files.PageRefs(obj, []record.Block{{ID: "p", Type: "toggle", Children: []record.Block{blk}}})
	var got []string
	for _, r := range refs {
		got = append(got, r.Key+"|"+r.Name+"|"+r.BlockID)
	}
	want := "https://s.example/a/logo.png|logo.png||https://s.example/a/n.txt|n.txt||https://s.example/a/i.png|i.png|b1"
	if strings.Join(got, "|") != want {
		t.Errorf("refs\n%s\nwant\n%s", strings.Join(got, "|"), want)
	}
}
