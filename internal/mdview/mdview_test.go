package mdview_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/notionsync/notionsync/internal/mdview"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestHandler(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "pages"), 0o750); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]string{
		"index.md":     "# Index\n\n- [A](pages/a.md)\n",
		"pages/a.md":   "# A\n\n| x |\n| --- |\n| 1 |\n\n<details><summary>more</summary>\n\nhidden\n\n</details>\n",
		"pages/a.json": `{"id":"a"}`,
		"../secret.md": "secret",
	} {
		if err := os.WriteFile(filepath.Join(root, name), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(mdview.Handler(root))
	defer srv.Close()
	code, body := get(t, srv.URL+"/")
	if code != 200 || !strings.Contains(body, `<a href="pages/a.md">A</a>`) {
		t.Fatalf("/: %d\n%s", code, body)
	}
	code, body = get(t, srv.URL+"/pages/a.md")
	if code != 200 || !strings.Contains(body, "<table>") || !strings.Contains(body, "<details>") {
		t.Fatalf("/pages/a.md: %d\n%s", code, body)
	}
	if code, body = get(t, srv.URL+"/pages/a.json"); code != 200 || body != `{"id":"a"}` {
		t.Fatalf("/pages/a.json: %d %s", code, body)
	}
	if code, _ = get(t, srv.URL+"/pages/missing.md"); code != 404 {
		t.Fatalf("missing file: %d", code)
	}
	if code, body = get(t, srv.URL+"/../secret.md"); code != 404 || strings.Contains(body, "secret") {
		t.Fatalf("a path above the root was served: %d %s", code, body)
	}
}
