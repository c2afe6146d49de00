package sandbox

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"go.uber.org/zap/zaptest"
)

func listen(t *testing.T) (net.Listener, error) {
	t.Helper()
	var lc net.ListenConfig
	return lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
}

// serveInProcess runs Serve on a loopback port and returns the lines written
// up to the ready line, the listener's address, and Serve's result channel.
func serveInProcess(t *testing.T, ctx context.Context, sb *Sandbox) (lines []string, addr string, done <-chan error) {
	t.Helper()
	ln, err := listen(t)
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		err := sb.Serve(ctx, ln, pw)
		_ = pw.Close()
		errc <- err
	}()
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if strings.HasPrefix(sc.Text(), "notion-sandbox listening on ") {
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }() // until Serve closes pw
	return lines, ln.Addr().String(), errc
}

func TestServe(t *testing.T) {
	t.Parallel()
	sb, err := New(smallConfig(), zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	lines, addr, done := serveInProcess(t, ctx, sb)

	want := fmt.Sprintf("notion-sandbox listening on http://%s (client_id=fake-client-id, workspace=sandbox-ws)", addr)
	if len(lines) == 0 || lines[len(lines)-1] != want {
		t.Fatalf("output %q, want last line %q", lines, want)
	}
	banner := strings.Join(lines, "\n")
	for _, w := range []string{
		"NOTIONSYNC_NOTION_API_URL=http://" + addr, "NOTIONSYNC_NOTION_CLIENT_SECRET=fake-client-secret",
		"4 pages, 1 databases, 3 rows", "/_sandbox/",
	} {
		if !strings.Contains(banner, w) {
			t.Errorf("banner lacks %q:\n%s", w, banner)
		}
	}

	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+addr+"/_sandbox/health", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("health: %d", resp.StatusCode)
	}

	ln2, err := listen(t)
	if err != nil {
		t.Fatal(err)
	}
	if err := sb.Serve(ctx, ln2, io.Discard); err == nil {
		t.Fatal("a second Serve succeeded")
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve after cancel: %v", err)
	}
	var d net.Dialer
	if conn, err := d.DialContext(t.Context(), "tcp", addr); err == nil {
		_ = conn.Close()
		t.Fatal("still accepting after shutdown")
	}
}

func TestServeFails(t *testing.T) {
	t.Parallel()
	sb, err := New(smallConfig(), zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := listen(t)
	if err != nil {
		t.Fatal(err)
	}
	_ = ln.Close() // Serve cannot accept: an error, not a clean stop
	if err := sb.Serve(t.Context(), ln, io.Discard); err == nil {
		t.Fatal("Serve on a closed listener returned nil")
	}
}

func TestBannerHidesAGivenSecret(t *testing.T) {
	t.Parallel()
	cfg := smallConfig()
	cfg.ClientID, cfg.ClientSecret = "my-client", "my-s3cret-value"
	sb, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	b := sb.banner("127.0.0.1:1")
	if strings.Contains(b, "my-s3cret-value") || !strings.Contains(b, "client_id=my-client") {
		t.Fatalf("banner:\n%s", b)
	}
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	t.Parallel()
	cfg := smallConfig()
	cfg.FailRate = 2
	if _, err := New(cfg, nil); err == nil || !strings.Contains(err.Error(), "-fail-rate") {
		t.Fatalf("New: %v", err)
	}
}
