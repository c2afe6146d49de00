package tokens_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/notionsync/notionsync/tokens"
	"github.com/notionsync/notionsync/tokens/notionauth"
)

// The multi-process tests run this test binary again as a helper process
// (the os/exec idiom): each helper is a separate OS process with its own
// Source, sharing only Redis and the fake with the others, exactly like
// worker containers.
const helperEnv = "NOTIONSYNC_TOKENS_HELPER"

// helperProc is a running helper process.
type helperProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
	done  chan struct{}
}

// startHelper starts a helper in mode; it returns once the helper printed
// READY (its Source is subscribed).
func (e *env) startHelper(mode, connID string, goroutines int, lockTTL time.Duration) *helperProc {
	e.t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	addrs, cluster := backendAddrs(e.t)
	cmd.Env = append(os.Environ(),
		helperEnv+"="+mode,
		"H_REDIS="+addrs,
		"H_CLUSTER="+strconv.FormatBool(cluster),
		"H_PREFIX="+e.prefix,
		"H_URL="+e.url,
		"H_CLIENT_ID="+e.fake.ClientID(),
		"H_CLIENT_SECRET="+e.fake.ClientSecret(),
		"H_CONN="+connID,
		"H_N="+strconv.Itoa(goroutines),
		"H_LOCK_TTL="+lockTTL.String(),
		"H_CLOCK_OFFSET="+strconv.FormatInt(int64(e.clock.Now().Sub(time.Now())), 10),
	)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	h := &helperProc{cmd: cmd, stdin: stdin, lines: make(chan string, 1024), done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			h.lines <- sc.Text()
		}
		close(h.lines)
	}()
	go func() { _ = cmd.Wait(); close(h.done) }()
	e.t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-h.done
	})
	h.expect(e.t, "READY")
	return h
}

// expect waits for the next line and fails unless it starts with prefix.
func (h *helperProc) expect(t *testing.T, prefix string) string {
	t.Helper()
	select {
	case line, ok := <-h.lines:
		if !ok {
			t.Fatalf("helper exited before printing %q", prefix)
		}
		if !strings.HasPrefix(line, prefix) {
			t.Fatalf("helper printed %q, want %q...", line, prefix)
		}
		return line
	case <-time.After(60 * time.Second):
		t.Fatalf("helper did not print %q within 60s", prefix)
	}
	return ""
}

func (h *helperProc) send(t *testing.T, line string) {
	t.Helper()
	if _, err := io.WriteString(h.stdin, line+"\n"); err != nil {
		t.Fatal(err)
	}
}

// kill SIGKILLs the helper and waits until it is gone.
func (h *helperProc) kill() {
	_ = h.cmd.Process.Signal(syscall.SIGKILL)
	<-h.done
}

func fingerprint(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:8])
}

// helperMain is the helper process. Modes:
//
//	storm        READY; wait for GO; N goroutines call Token; print
//	             "TOKEN <fingerprint> <version>" or "ERR <error>" each; exit.
//	kill-before  READY; wait for GO; Token; stop forever just before the
//	             token call, after printing "AT before".
//	kill-after   the same, stopping after the response, before the write.
//	kill-during  READY; wait for GO; Token (the test parks the request in
//	             the fake and kills the process).
func helperMain() int {
	mode := os.Getenv(helperEnv)
	n, _ := strconv.Atoi(os.Getenv("H_N"))
	lockTTL, _ := time.ParseDuration(os.Getenv("H_LOCK_TTL"))
	offset, _ := strconv.ParseInt(os.Getenv("H_CLOCK_OFFSET"), 10, 64)
	now := func() time.Time { return time.Now().Add(time.Duration(offset)) }
	out := bufio.NewWriter(os.Stdout)
	var outMu sync.Mutex
	say := func(format string, args ...any) {
		outMu.Lock()
		fmt.Fprintf(out, format+"\n", args...)
		out.Flush()
		outMu.Unlock()
	}

	var rdb redis.UniversalClient = redis.NewClient(&redis.Options{Addr: os.Getenv("H_REDIS")})
	if os.Getenv("H_CLUSTER") == "true" {
		rdb = redis.NewClusterClient(&redis.ClusterOptions{
			Addrs:                    strings.Split(os.Getenv("H_REDIS"), ","),
			MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
		})
	}
	defer rdb.Close()
	kr, err := tokens.NewKeyring(tokens.Key{ID: "k1", Secret: keyBytes("k1")})
	if err != nil {
		say("ERR %v", err)
		return 1
	}
	st, err := tokens.NewStore(tokens.StoreConfig{Redis: rdb, Keyring: kr, KeyPrefix: os.Getenv("H_PREFIX"), Now: now})
	if err != nil {
		say("ERR %v", err)
		return 1
	}
	prov, err := notionauth.New(notionauth.Config{ClientID: os.Getenv("H_CLIENT_ID"),
		ClientSecret: os.Getenv("H_CLIENT_SECRET"), BaseURL: os.Getenv("H_URL")})
	if err != nil {
		say("ERR %v", err)
		return 1
	}
	hooks := tokens.Hooks{}
	switch mode {
	case "kill-before":
		hooks.BeforeTokenCall = func(string) { say("AT before"); select {} }
	case "kill-after":
		hooks.AfterTokenResponse = func(string) { say("AT after"); select {} }
	}
	src, err := tokens.NewSource(context.Background(), tokens.Config{
		Store: st, Provider: prov, LockTTL: lockTTL, CallTimeout: lockTTL / 3, Hooks: hooks,
		Timing: tokens.Timing{AccessTokenLifetime: time.Hour, RefreshMargin: 10 * time.Minute, RefreshJitter: time.Minute},
	})
	if err != nil {
		say("ERR %v", err)
		return 1
	}
	defer src.Close()
	say("READY")
	in := bufio.NewScanner(os.Stdin)
	if !in.Scan() || in.Text() != "GO" {
		return 2
	}
	conn := os.Getenv("H_CONN")
	var wg sync.WaitGroup
	for range max(n, 1) {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			tok, err := src.Token(ctx, conn)
			if err != nil {
				say("ERR %v", err)
				return
			}
			say("TOKEN %s %d", fingerprint(tok.AccessToken), tok.Version)
		})
	}
	wg.Wait()
	return 0
}
