package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// startTimeout bounds how long the binary may take to print its ready line.
const startTimeout = 30 * time.Second

const readyPrefix = "notion-sandbox listening on http://"

// TestBinary builds cmd/notion-sandbox (with -race when the test runs with
// it) and runs it as the demo script does.
func TestBinary(t *testing.T) {
	bin := buildBinary(t)
	t.Run("OAuthDataAndSIGTERM", func(t *testing.T) { testOAuthDataAndSIGTERM(t, bin) })
	t.Run("InvalidFlagExits2", func(t *testing.T) {
		out, code := runToExit(t, bin, "-fail-rate", "2")
		if code != 2 || !strings.Contains(out, "-fail-rate 2 outside 0..1") {
			t.Fatalf("exit %d, output %q", code, out)
		}
	})
	t.Run("HelpExits0", func(t *testing.T) {
		out, code := runToExit(t, bin, "-h")
		if code != 0 || !strings.Contains(out, "Usage: notion-sandbox") {
			t.Fatalf("exit %d, output %q", code, out)
		}
	})
	t.Run("VersionExits0", func(t *testing.T) {
		out, code := runToExit(t, bin, "-version")
		if code != 0 || !strings.HasPrefix(out, "notion-sandbox github.com/notionsync/notionsync ") || !strings.Contains(out, ", go1.") {
			t.Fatalf("exit %d, output %q", code, out)
		}
	})
	t.Run("AddressInUseExits1", func(t *testing.T) {
		var lc net.ListenConfig
		ln, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		out, code := runToExit(t, bin, "-addr", ln.Addr().String(), "-pages", "1")
		if code != 1 || !strings.Contains(out, "listen") {
			t.Fatalf("exit %d, output %q", code, out)
		}
	})
}

func buildBinary(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go") // go test puts GOROOT/bin first in PATH
	if err != nil {
		t.Fatalf("the go command is needed to build the binary: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "notion-sandbox")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	out, err := exec.CommandContext(t.Context(), goBin, append(args, ".")...).CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// runToExit runs the binary to its exit and returns its combined output and
// exit code.
func runToExit(t *testing.T, bin string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), startTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = childEnv()
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee) && ee.Exited():
		return string(out), ee.ExitCode()
	}
	t.Fatalf("run %v: %v\n%s", args, err, out)
	return "", 0
}

// childEnv is the environment of the binary: the test's, and no one-second
// pause of the race detector at exit (GORACE atexit_sleep_ms).
func childEnv() []string {
	return append(os.Environ(), "GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
}

// process is a running sandbox binary.
type process struct {
	cmd      *exec.Cmd
	stderr   bytes.Buffer // read only after wait
	ready    chan string  // the address of the ready line
	drained  chan struct{}
	stdout   []string // lines up to the ready line; read after ready
	waitOnce sync.Once
	exited   chan struct{} // closed when wait has returned
	waitErr  error         // read after exited
}

func start(t *testing.T, bin string, env []string, args ...string) (*process, string) {
	t.Helper()
	p := &process{ready: make(chan string, 1), drained: make(chan struct{}), exited: make(chan struct{})}
	// The context kills the process if the test ends without waiting for it.
	p.cmd = exec.CommandContext(t.Context(), bin, args...)
	p.cmd.Env = append(childEnv(), env...)
	p.cmd.Stderr = &p.stderr
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(p.drained)
		sc := bufio.NewScanner(stdout)
		sent := false
		for sc.Scan() {
			if sent {
				continue
			}
			line := sc.Text()
			p.stdout = append(p.stdout, line)
			if rest, ok := strings.CutPrefix(line, readyPrefix); ok {
				addr, _, _ := strings.Cut(rest, " ")
				p.ready <- addr
				sent = true
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill()
			p.wait()
			t.Logf("sandbox stderr:\n%s", p.stderr.String())
		}
	})

	timer := time.NewTimer(startTimeout)
	defer timer.Stop()
	select {
	case addr := <-p.ready:
		return p, addr
	case <-p.drained:
		p.wait()
		t.Fatalf("the sandbox exited before it was ready (%v):\n%s", p.waitErr, p.stderr.String())
	case <-timer.C:
		t.Fatalf("no ready line within %v", startTimeout)
	}
	return nil, ""
}

// wait waits for stdout to be read to its end, then for the process. It is
// safe for concurrent use; every call returns once the process has exited.
func (p *process) wait() {
	p.waitOnce.Do(func() {
		<-p.drained
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	})
	<-p.exited
}

func testOAuthDataAndSIGTERM(t *testing.T, bin string) {
	const (
		secret   = "env-secret"
		redirect = "http://127.0.0.1:9/oauth/callback"
		version  = "2022-06-28"
	)
	p, addr := start(t, bin, []string{"NOTION_SANDBOX_CLIENT_SECRET=" + secret},
		"-addr", "127.0.0.1:0", "-pages", "3", "-nested-pages", "1", "-databases", "1", "-rows", "2",
		"-blocks-per-page", "4", "-redirect-uri", redirect, "-access-token-lifetime", "1h", "-log-level", "debug")
	base := "http://" + addr
	if banner := strings.Join(p.stdout, "\n"); strings.Contains(banner, secret) {
		t.Fatalf("the banner shows a client secret given through the environment:\n%s", banner)
	}

	transport := &http.Transport{}
	defer transport.CloseIdleConnections()
	client := &http.Client{
		Transport:     transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	do := func(method, path string, body any, header http.Header) (*http.Response, []byte) {
		t.Helper()
		var rd io.Reader
		if body != nil {
			b, err := json.Marshal(body)
			if err != nil {
				t.Fatal(err)
			}
			rd = bytes.NewReader(b)
		}
		req, err := http.NewRequestWithContext(t.Context(), method, base+path, rd)
		if err != nil {
			t.Fatal(err)
		}
		req.Header = header
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, raw
	}

	// 1. The authorize page approves at once: 302 to the redirect URI with a code.
	q := url.Values{"client_id": {"fake-client-id"}, "response_type": {"code"}, "owner": {"user"},
		"redirect_uri": {redirect}, "state": {"st-123"}}
	resp, _ := do(http.MethodGet, "/v1/oauth/authorize?"+q.Encode(), nil, http.Header{})
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize: %d, want 302", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	code := loc.Query().Get("code")
	if code == "" || loc.Query().Get("state") != "st-123" || !strings.HasPrefix(loc.String(), redirect+"?") {
		t.Fatalf("authorize redirected to %q", loc.Redacted())
	}

	// 2. Code exchange with Basic client authentication.
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("fake-client-id:"+secret))
	jsonHeader := func(auth string) http.Header {
		return http.Header{"Authorization": {auth}, "Notion-Version": {version}, "Content-Type": {"application/json"}}
	}
	resp, raw := do(http.MethodPost, "/v1/oauth/token",
		map[string]string{"grant_type": "authorization_code", "code": code, "redirect_uri": redirect}, jsonHeader(basic))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("code exchange: %d %s", resp.StatusCode, raw)
	}
	var tok struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		TokenType    string `json:"token_type"`
		WorkspaceID  string `json:"workspace_id"`
	}
	if err := json.Unmarshal(raw, &tok); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok.AccessToken, "ntn_") || !strings.HasPrefix(tok.RefreshToken, "nrt_") ||
		tok.TokenType != "bearer" || tok.WorkspaceID != "sandbox-ws" {
		t.Fatalf("token response: type %q workspace %q", tok.TokenType, tok.WorkspaceID)
	}

	// 3. Search with the access token finds every page and row the sandbox expects.
	resp, raw = do(http.MethodPost, "/v1/search",
		map[string]any{"filter": map[string]string{"property": "object", "value": "page"}}, jsonHeader("Bearer "+tok.AccessToken))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("search: %d %s", resp.StatusCode, raw)
	}
	var list struct {
		Object  string            `json:"object"`
		Results []json.RawMessage `json:"results"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		t.Fatal(err)
	}
	resp, raw = do(http.MethodGet, "/_sandbox/expected", nil, http.Header{})
	var exp struct {
		PageCount int `json:"page_count"`
	}
	if err := json.Unmarshal(raw, &exp); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("expected: %d %s %v", resp.StatusCode, raw, err)
	}
	if list.Object != "list" || len(list.Results) != 5 || exp.PageCount != 5 {
		t.Fatalf("search found %d pages, /_sandbox/expected %d, want 3 pages + 2 rows", len(list.Results), exp.PageCount)
	}

	resp, raw = do(http.MethodGet, "/_sandbox/stats", nil, http.Header{})
	var stats struct {
		Connected bool `json:"connected"`
		Tokens    struct {
			Exchanges int `json:"exchanges"`
		} `json:"tokens"`
	}
	if err := json.Unmarshal(raw, &stats); err != nil || !stats.Connected || stats.Tokens.Exchanges != 1 {
		t.Fatalf("stats: %d %s %v", resp.StatusCode, raw, err)
	}

	// 4. SIGTERM: a clean exit.
	transport.CloseIdleConnections()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	go p.wait()
	timer := time.NewTimer(startTimeout)
	defer timer.Stop()
	select {
	case <-p.exited:
	case <-timer.C:
		t.Fatal("no exit within 30s of SIGTERM")
	}
	logs := p.stderr.String()
	if p.waitErr != nil || p.cmd.ProcessState.ExitCode() != 0 {
		t.Fatalf("exit after SIGTERM: %v\n%s", p.waitErr, logs)
	}
	if !strings.Contains(logs, "shutting down") {
		t.Errorf("stderr lacks the shutdown:\n%s", logs)
	}
	for _, s := range []string{tok.AccessToken, tok.RefreshToken, code, secret} {
		if strings.Contains(logs, s) {
			t.Fatalf("the logs show a secret:\n%s", logs)
		}
	}
}
