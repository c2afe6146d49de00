package browsertest

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// ErrNotInstalled is wrapped by Find when no Chromium binary can be found.
var ErrNotInstalled = errors.New("chromium is not installed")

// EnvPath names the variable that points at a Chromium (or Chrome) binary,
// overriding the search in PATH.
const EnvPath = "CHROMIUM_PATH"

// installHint is the remedy printed with ErrNotInstalled.
const installHint = "run `make deps` as root (installs Debian's chromium with apt-get) or set " + EnvPath

// candidates are the names searched in PATH, Debian's first.
var candidates = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}

// Options configures New. The zero value is usable.
type Options struct {
	// Width and Height are the window size in CSS pixels. Default 1280x800:
	// wide enough for the console's table without horizontal scrolling.
	Width, Height int
	// Timeout bounds the whole browser session, so a hung page fails the
	// test instead of running into go test's global timeout. Default 2m.
	Timeout time.Duration
}

// Find returns the path of the Chromium binary: CHROMIUM_PATH when set (it
// must then exist), else the first candidate found in PATH. The error wraps
// ErrNotInstalled.
func Find() (string, error) {
	if p := os.Getenv(EnvPath); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%w: %s=%q: %v", ErrNotInstalled, EnvPath, p, err)
		}
		return p, nil
	}
	for _, name := range candidates {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: none of %v in PATH", ErrNotInstalled, candidates)
}

// inCI reports whether the tests run under CI, where a missing browser is a
// failure rather than a skip.
func inCI() bool {
	v := os.Getenv("CI")
	return v != "" && v != "false" && v != "0"
}

// missing fails (CI) or skips (elsewhere) tb for the Find error err.
func missing(tb testing.TB, err error, ci bool) {
	tb.Helper()
	if ci {
		tb.Fatalf("browsertest: %v; CI=true, so this is a failure, not a skip: %s", err, installHint)
		return
	}
	tb.Skipf("browsertest: %v; %s", err, installHint)
}

// New starts a headless Chromium for tb and returns a chromedp context whose
// first tab is open. tb's cleanup ends the browser and removes its profile.
// A failure to start the browser fails tb, with the browser's own output.
func New(tb testing.TB, opts Options) context.Context {
	tb.Helper()
	path, err := Find()
	if err != nil {
		missing(tb, err, inCI())
		return nil
	}
	w, h := cmp.Or(opts.Width, 1280), cmp.Or(opts.Height, 800)
	profile := tb.TempDir()
	out := &lockedBuffer{}
	allocOpts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(w, h),
		// Chromium refuses its sandbox as root (CI runs as root) and the
		// pages under test are our own.
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("font-render-hinting", "none"),
		chromedp.CombinedOutput(out),
	)
	ctx, cancelTimeout := context.WithTimeout(context.Background(), cmp.Or(opts.Timeout, 2*time.Minute))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, allocOpts...)
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx)
	// Cleanups run last-registered first: close the tab and browser, wait for
	// the process (cancelAlloc waits), then t.TempDir removes the profile.
	tb.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
		cancelTimeout()
		if tb.Failed() && out.Len() > 0 {
			tb.Logf("browsertest: chromium output:\n%s", out.String())
		}
	})
	// An empty Do starts the browser now, so a broken install fails here
	// with a clear message rather than in the first navigation.
	if err := chromedp.Do(browserCtx); err != nil {
		tb.Fatalf("browsertest: start %s: %v\nchromium output:\n%s", path, err, out.String())
	}
	return browserCtx
}

// Screenshot writes a PNG of the whole current page (beyond the viewport) to
// path, creating its directory.
func Screenshot(ctx context.Context, path string) error {
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG, not JPEG
	if err != nil {
		return fmt.Errorf("browsertest: screenshot: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("browsertest: screenshot: %w", err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		return fmt.Errorf("browsertest: screenshot: %w", err)
	}
	return nil
}

// lockedBuffer collects the browser's output, written by chromedp's
// goroutine and read by the test's.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Len()
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
