package browsertest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// TestBrowser drives a real page: navigation, reading rendered text (set by
// a script, so the page really ran in a browser), a click and a screenshot.
func TestBrowser(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		switch r.URL.Path {
		case "/":
			io.WriteString(w, `<!doctype html><title>home</title><h1 id="h"></h1><a id="next" href="/next">next</a>
<script>document.getElementById("h").textContent = "rendered " + (6*7);</script>`)
		case "/next":
			io.WriteString(w, `<!doctype html><title>next</title><p id="p">second page</p>`)
		}
	}))
	defer srv.Close()

	ctx := New(t, Options{Width: 640, Height: 480})
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL)); err != nil {
		t.Fatal(err)
	}
	h, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#h")))
	if err != nil {
		t.Fatal(err)
	}
	if h != "rendered 42" {
		t.Fatalf("h1 = %q, want the text the page's script set", h)
	}
	if _, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS("#next"))); err != nil {
		t.Fatal(err)
	}
	p, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#p")))
	if err != nil || p != "second page" {
		t.Fatalf("after click: %q, %v", p, err)
	}

	shot := filepath.Join(t.TempDir(), "sub", "page.png")
	if err := Screenshot(ctx, shot); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(shot)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("screenshot is not a PNG: % x", b[:min(8, len(b))])
	}
}

func TestFindHonoursEnv(t *testing.T) {
	t.Setenv(EnvPath, filepath.Join(t.TempDir(), "no-such-chromium"))
	_, err := Find()
	if !errors.Is(err, ErrNotInstalled) || !strings.Contains(err.Error(), EnvPath) {
		t.Fatalf("Find with a missing %s = %v, want ErrNotInstalled naming the variable", EnvPath, err)
	}

	fake := filepath.Join(t.TempDir(), "chromium")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvPath, fake)
	if got, err := Find(); err != nil || got != fake {
		t.Fatalf("Find = %q, %v, want %q", got, err, fake)
	}
}

func TestFindSearchesPath(t *testing.T) {
	t.Setenv(EnvPath, "")
	t.Setenv("PATH", t.TempDir())
	if _, err := Find(); !errors.Is(err, ErrNotInstalled) {
		t.Fatalf("Find with an empty PATH = %v, want ErrNotInstalled", err)
	}
}

// recorder is a testing.TB that records Fatalf and Skipf instead of ending
// the goroutine.
type recorder struct {
	testing.TB
	fatal, skip string
}

func (r *recorder) Helper()                      {}
func (r *recorder) Fatalf(f string, args ...any) { r.fatal = fmt.Sprintf(f, args...) }
func (r *recorder) Skipf(f string, args ...any)  { r.skip = fmt.Sprintf(f, args...) }

func TestMissingFailsInCIAndSkipsElsewhere(t *testing.T) {
	err := fmt.Errorf("%w: test", ErrNotInstalled)

	ci := &recorder{TB: t}
	missing(ci, err, true)
	if ci.fatal == "" || ci.skip != "" || !strings.Contains(ci.fatal, "make deps") {
		t.Fatalf("in CI: fatal=%q skip=%q, want a failure naming make deps", ci.fatal, ci.skip)
	}

	dev := &recorder{TB: t}
	missing(dev, err, false)
	if dev.skip == "" || dev.fatal != "" || !strings.Contains(dev.skip, "make deps") {
		t.Fatalf("outside CI: fatal=%q skip=%q, want a skip naming make deps", dev.fatal, dev.skip)
	}
}

func TestInCI(t *testing.T) {
	for v, want := range map[string]bool{"": false, "false": false, "0": false, "true": true, "1": true} {
		t.Setenv("CI", v)
		if got := inCI(); got != want {
			t.Errorf("CI=%q: inCI = %v, want %v", v, got, want)
		}
	}
}
