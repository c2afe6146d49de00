package tokens_test

// One test (or more) per token-lifecycle invariant (the table in
// docs/architecture.md). Each says which invariant it guards and fails when
// the mechanism is removed.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/notionsync/notionsync/internal/notionfake"
	"github.com/notionsync/notionsync/tokens"
)

func bg(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestFastPathDoesNotRefresh(t *testing.T) { onBackends(t, true, testFastPathDoesNotRefresh) }

func testFastPathDoesNotRefresh(t *testing.T) {
	t.Parallel()
	e := newEnv(t, notionfake.Options{})
	p := e.connect("ws-fast")
	src := e.source(nil)
	for range 10 {
		tok := must[tokens.Token](t)(src.Token(bg(t), "ws-fast"))
		if tok.AccessToken != p.AccessToken || tok.Version != 1 {
			t.Fatalf("got %v, want the connected token at v1", tok)
		}
	}
	if n := e.fake.Stats().TokenRequests; n != 0 {
		t.Fatalf("fast path made %d token requests", n)
	}
}

// Invariant 1 inside one process (single-flight) and across Sources (lock).
func TestInv1OneRefreshPerRotationGoroutines(t *testing.T) {
	onBackends(t, true, testInv1OneRefreshPerRotationGoroutines)
}

func testInv1OneRefreshPerRotationGoroutines(t *testing.T) {
	t.Parallel()
	e := newEnv(t, notionfake.Options{})
	e.connect("ws-1")
	e.fake.SetLatency(50 * time.Millisecond) // widen the race window
	srcs := []*tokens.Source{e.source(nil), e.source(nil), e.source(nil)}
	e.expire()

	var wg sync.WaitGroup
	got := make(chan string, 3*64)
	for _, src := range srcs {
		for range 64 {
			wg.Go(func() {
				tok, err := src.Token(bg(t), "ws-1")
				if err != nil {
					t.Error(err)
					return
				}
				got <- tok.AccessToken
			})
		}
	}
	wg.Wait()
	close(got)
	want := e.current("ws-1").AccessToken
	for tok := range got {
		if tok != want {
			t.Fatal("a caller got a token other than the newest one")
		}
	}
	st := e.fake.Stats()
	if st.RefreshGrants != 1 || st.InvalidGrants != 0 {
		t.Fatalf("refresh grants = %d, invalid_grant = %d; want 1 and 0", st.RefreshGrants, st.InvalidGrants)
	}
}

// Invariants 1 and 2 across OS processes: 4 helper processes x 32
// goroutines hit an expired token at the same moment.
func TestInv1StormAcrossProcesses(t *testing.T) { onBackends(t, true, testInv1StormAcrossProcesses) }

func testInv1StormAcrossProcesses(t *testing.T) {
	t.Parallel()
	e := newEnv(t, notionfake.Options{})
	e.connect("ws-storm")
	e.fake.SetLatency(100 * time.Millisecond)
	e.expire()
	const procs, goroutines = 4, 32
	var hs []*helperProc
	for range procs {
		hs = append(hs, e.startHelper("storm", "ws-storm", goroutines, 30*time.Second))
	}
	for _, h := range hs {
		h.send(t, "GO")
	}
	e.checkStorm(hs, goroutines)
}

// checkStorm collects every helper's answers: all got the one new token,
// and the fake saw one grant and no invalid_grant.
func (e *env) checkStorm(hs []*helperProc, goroutines int) {
	t := e.t
	var answers []string
	for _, h := range hs {
		for range goroutines {
			answers = append(answers, h.expect(t, ""))
		}
	}
	cur := e.current("ws-storm")
	want := fmt.Sprintf("TOKEN %s 2", fingerprint(cur.AccessToken))
	for _, a := range answers {
		if a != want {
			t.Fatalf("a caller got %q, want %q", a, want)
		}
	}
	st := e.fake.Stats()
	if st.RefreshGrants != 1 || st.InvalidGrants != 0 {
		t.Fatalf("refresh grants = %d, invalid_grant = %d; want 1 and 0", st.RefreshGrants, st.InvalidGrants)
	}
}

// Invariant 2: a waiter is woken by the refresher's notification, not by
// polling or by its lock-expiry safety net (LockTTL is 30 s here).
func TestInv2WaitersAreWoken(t *testing.T) { onBackends(t, true, testInv2WaitersAreWoken) }

func testInv2WaitersAreWoken(t *testing.T) {
	t.Parallel()
	e := newEnv(t, notionfake.Options{})
	e.connect("ws-wake")
	release := make(chan struct{})
	arrived := make(chan struct{})
	holder := e.source(func(c *tokens.Config) {
		c.Hooks.AfterTokenResponse = func(string) { close(arrived); <-release }
	})
	busy := make(chan struct{}, 1)
	waiter := e.source(func(c *tokens.Config) {
		c.Hooks.OnLockBusy = func(string) {
			select {
			case busy <- struct{}{}:
			default:
			}
		}
	})
	e.expire()

	go func() { _, _ = holder.Token(context.Background(), "ws-wake") }()
	<-arrived // the holder has the lock and the new pair, not yet stored
	res := make(chan error, 1)
	var woke time.Time
	go func() {
		_, err := waiter.Token(context.Background(), "ws-wake")
		woke = time.Now()
		res <- err
	}()
	<-busy // the waiter found the lock taken and waits
	released := time.Now()
	close(release)
	if err := <-res; err != nil {
		t.Fatal(err)
	}
	if d := woke.Sub(released); d > 5*time.Second {
		t.Fatalf("waiter took %s after the write: it was not woken by the notification", d)
	}
	if n := e.fake.Stats().RefreshGrants; n != 1 {
		t.Fatalf("refresh grants = %d, want 1", n)
	}
}

// graceProvider models a provider that keeps the old refresh token usable
// for a moment (a grace period), so two holders can both succeed: only the
// version fence then decides whose pair is stored.
type graceProvider struct {
	mu    sync.Mutex
	n     int
	block map[int]chan struct{} // call number -> released when closed
	seen  map[int]chan struct{}
}

func (g *graceProvider) Refresh(ctx context.Context, rt string) (*tokens.Grant, error) {
	g.mu.Lock()
	g.n++
	n := g.n
	block, seen := g.block[n], g.seen[n]
	g.mu.Unlock()
	if seen != nil {
		close(seen)
	}
	if block != nil {
		<-block
	}
	return &tokens.Grant{AccessToken: fmt.Sprintf("at-%d", n), RefreshToken: fmt.Sprintf("rt-%d", n)}, nil
}

// Invariant 3: a holder whose lock expired during a slow token call cannot
// overwrite the newer pair another holder stored meanwhile.
func TestInv3StaleHolderIsFenced(t *testing.T) { onBackends(t, true, testInv3StaleHolderIsFenced) }

func testInv3StaleHolderIsFenced(t *testing.T) {
	t.Parallel()
	e := newEnv(t, notionfake.Options{})
	e.connect("ws-fence")
	gp := &graceProvider{block: map[int]chan struct{}{1: make(chan struct{})}, seen: map[int]chan struct{}{1: make(chan struct{})}}
	slow := e.source(func(c *tokens.Config) { c.Provider = gp })
	fast := e.source(func(c *tokens.Config) { c.Provider = gp })
	e.expire()

	slowRes := make(chan tokens.Token, 1)
	go func() {
		tok, err := slow.Token(context.Background(), "ws-fence")
		if err != nil {
			t.Error(err)
		}
		slowRes <- tok
	}()
	<-gp.seen[1] // the slow holder is inside its token call
	// Its lock expires (a GC pause or a partition stalled its extensions).
	if err := e.rdb.Del(bg(t), e.key("lock:", "ws-fence")).Err(); err != nil {
		t.Fatal(err)
	}
	tok := must[tokens.Token](t)(fast.Token(bg(t), "ws-fence"))
	if tok.AccessToken != "at-2" || tok.Version != 2 {
		t.Fatalf("fast holder stored %v, want at-2 at v2", tok)
	}
	close(gp.block[1]) // the slow holder wakes with an older rotation
	stale := <-slowRes
	if stale.AccessToken != "at-2" {
		t.Fatalf("stale holder handed out %q; it must adopt the stored pair", stale.AccessToken)
	}
	conn := must[*tokens.Connection](t)(e.store(nil).Get(bg(t), "ws-fence"))
	if conn.Version != 2 {
		t.Fatalf("version = %d, want 2 (the stale write must not land)", conn.Version)
	}
	got := must[tokens.Token](t)(e.source(nil).Token(bg(t), "ws-fence"))
	if got.AccessToken != "at-2" {
		t.Fatalf("stored access token is %q, want at-2", got.AccessToken)
	}
	if !hasEvent(t, e, "ws-fence", tokens.EventStaleWrite) {
		t.Fatal("no stale_write_rejected event on the timeline")
	}
}

func hasEvent(t *testing.T, e *env, id, kind string) bool {
	t.Helper()
	for _, ev := range must[[]tokens.Event](t)(e.store(nil).Events(bg(t), id)) {
		if ev.Kind == kind {
			return true
		}
	}
	return false
}

// Invariant 4: the rotated pair is stored before anyone gets the access
// token; a response without a refresh token keeps the stored one.
func TestInv4PersistBeforeUse(t *testing.T) { onBackends(t, true, testInv4PersistBeforeUse) }

func testInv4PersistBeforeUse(t *testing.T) {
	t.Parallel()
	e := newEnv(t, notionfake.Options{})
	e.connect("ws-persist")
	src := e.source(nil)
	reader := e.store(nil)
	e.expire()
	tok := must[tokens.Token](t)(src.Token(bg(t), "ws-persist"))
	conn := must[*tokens.Connection](t)(reader.Get(bg(t), "ws-persist"))
	if conn.Version != tok.Version {
		t.Fatalf("token v%d handed out while the store holds v%d", tok.Version, conn.Version)
	}
	// The stored refresh token is the fake's live one: the next refresh works.
	e.expire()
	if _, err := src.Token(bg(t), "ws-persist"); err != nil {
		t.Fatalf("second refresh: %v", err)
	}
	if st := e.fake.Stats(); st.RefreshGrants != 2 || st.InvalidGrants != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestInv4NullRefreshTokenKeepsStoredOne(t *testing.T) {
	onBackends(t, true, testInv4NullRefreshTokenKeepsStoredOne)
}

func testInv4NullRefreshTokenKeepsStoredOne(t *testing.T) {
	t.Parallel()
	e := newEnv(t, notionfake.Options{NullRefreshToken: true})
	e.connect("ws-null")
	src := e.source(nil)
	for i := range 3 {
		e.expire()
		if _, err := src.Token(bg(t), "ws-null"); err != nil {
			t.Fatalf("refresh %d: %v", i+1, err)
		}
	}
	conn := must[*tokens.Connection](t)(e.store(nil).Get(bg(t), "ws-null"))
	if !conn.HasRefreshToken || conn.Version != 4 {
		t.Fatalf("after 3 refreshes without refresh_token: %+v", conn)
	}
}

// Invariant 5: the token call is not cancelled by the job that triggered
// it; the rotation is stored even though the caller gave up.
func TestInv5CallOutlivesCaller(t *testing.T) { onBackends(t, true, testInv5CallOutlivesCaller) }

func testInv5CallOutlivesCaller(t *testing.T) {
	t.Parallel()
	e := newEnv(t, notionfake.Options{})
	e.connect("ws-detach")
	e.fake.SetLatency(300 * time.Millisecond)
	src := e.source(nil)
	e.expire()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := src.Token(ctx, "ws-detach"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("caller error = %v, want its deadline", err)
	}
	// The flight goes on; the next caller gets its result without a new grant.
	tok := must[tokens.Token](t)(src.Token(bg(t), "ws-detach"))
	if tok.AccessToken != e.current("ws-detach").AccessToken {
		t.Fatal("the committed rotation was not stored")
	}
	if st := e.fake.Stats(); st.RefreshGrants != 1 || st.InvalidGrants != 0 {
		t.Fatalf("stats %+v, want exactly one grant", st)
	}
}

// Invariant 5: the lock is extended while a refresh takes longer than its
// TTL (here: two unknown outcomes and their retries), so no second process
// starts a refresh of its own.
func TestInv5LockExtendedDuringLongRefresh(t *testing.T) {
	onBackends(t, true, testInv5LockExtendedDuringLongRefresh)
}

func testInv5LockExtendedDuringLongRefresh(t *testing.T) {
	t.Parallel()
	e := newEnv(t, notionfake.Options{})
	e.connect("ws-extend")
	mod := func(c *tokens.Config) {
		c.LockTTL, c.CallTimeout = 900*time.Millisecond, 300*time.Millisecond
		c.RetryBackoff = 500 * time.Millisecond // 500 + 1000 ms of backoff > LockTTL
	}
	e.fake.FailNext(2, 503)
	second := e.source(mod)
	e.expire()
	arrived := make(chan struct{})
	var once sync.Once
	third := e.source(func(c *tokens.Config) {
		mod(c)
		c.Hooks.OnTokenCall = func(string, error, time.Duration) { once.Do(func() { close(arrived) }) }
	})
	res := make(chan error, 2)
	go func() { _, err := third.Token(context.Background(), "ws-extend"); res <- err }()
	<-arrived // the third source holds the lock and got its first 503
	go func() { _, err := second.Token(context.Background(), "ws-extend"); res <- err }()
	for range 2 {
		if err := <-res; err != nil {
			t.Fatal(err)
		}
	}
	st := e.fake.Stats()
	if st.RefreshGrants != 1 || st.TokenRequests != 3 || st.InvalidGrants != 0 {
		t.Fatalf("stats %+v: want 3 token requests (2 failed, 1 grant), no invalid_grant", st)
	}
}

// Invariant 6: a loser's invalid_grant never marks a healthy connection
// dead: it re-reads, finds the version moved, and adopts the new pair.
func TestInv6InvalidGrantJudgedAfterReread(t *testing.T) {
	onBackends(t, true, testInv6InvalidGrantJudgedAfterReread)
}

func testInv6InvalidGrantJudgedAfterReread(t *testing.T) {
	t.Parallel()
	e := newEnv(t, notionfake.Options{})
	e.connect("ws-loser")
	release := make(chan struct{})
	atResponse := make(chan struct{})
	winner := e.source(func(c *tokens.Config) {
		c.Hooks.AfterTokenResponse = func(string) { close(atResponse); <-release }
	})
	e.expire()
	winnerRes := make(chan error, 1)
	go func() { _, err := winner.Token(context.Background(), "ws-loser"); winnerRes <- err }()
	<-atResponse // rotated at the fake, not yet stored
	// The winner's lock is lost; a loser takes it, re-reads the old version
	// and spends the (now dead) refresh token. Park its request at the fake
	// until the winner has stored its pair.
	gate := e.fake.BlockRefresh()
	if err := e.rdb.Del(bg(t), e.key("lock:", "ws-loser")).Err(); err != nil {
		t.Fatal(err)
	}
	loser := e.source(nil)
	loserRes := make(chan tokens.Token, 1)
	go func() {
		tok, err := loser.Token(context.Background(), "ws-loser")
		if err != nil {
			t.Errorf("loser: %v", err)
		}
		loserRes <- tok
	}()
	<-gate.Arrived()
	close(release)
	if err := <-winnerRes; err != nil {
		t.Fatal(err)
	}
	gate.Release() // the loser now gets invalid_grant
	tok := <-loserRes
	if tok.AccessToken != e.current("ws-loser").AccessToken {
		t.Fatal("loser did not adopt the winner's pair")
	}
	conn := must[*tokens.Connection](t)(e.store(nil).Get(bg(t), "ws-loser"))
	if conn.Status != tokens.StatusActive {
		t.Fatalf("status = %s, want active", conn.Status)
	}
	if st := e.fake.Stats(); st.InvalidGrants != 1 || st.RefreshGrants != 1 {
		t.Fatalf("stats %+v: want the loser's one invalid_grant and one grant", st)
	}
}

// Invariant 6 and 10: a revoked connection turns needs_reauth once, then
// costs nothing; re-authorizing resumes it.
func TestInv10RevokedIsQuietUntilReauthorized(t *testing.T) {
	onBackends(t, true, testInv10RevokedIsQuietUntilReauthorized)
}

func testInv10RevokedIsQuietUntilReauthorized(t *testing.T) {
	t.Parallel()
	e := newEnv(t, notionfake.Options{})
	e.connect("ws-revoked")
	var reauths []tokens.Reason
	var mu sync.Mutex
	src := e.source(func(c *tokens.Config) {
		c.Hooks.OnNeedsReauth = func(_ string, r tokens.Reason, _ string) { mu.Lock(); reauths = append(reauths, r); mu.Unlock() }
	})
	e.fake.Revoke("ws-revoked")
	e.expire()
	_, err := src.Token(bg(t), "ws-revoked")
	if !isReauth(err, tokens.ReasonRevoked) || !errors.Is(err, tokens.ErrReauthRequired) {
		t.Fatalf("err = %v, want needs re-authorization (revoked)", err)
	}
	before := e.fake.Stats().TokenRequests
	for range 50 {
		if _, err := src.Token(bg(t), "ws-revoked"); !errors.Is(err, tokens.ErrReauthRequired) {
			t.Fatalf("err = %v", err)
		}
		if err := src.Refresh(bg(t), "ws-revoked"); !errors.Is(err, tokens.ErrReauthRequired) {
			t.Fatalf("Refresh err = %v", err)
		}
		if _, err := src.Invalidate(bg(t), "ws-revoked", "whatever"); !errors.Is(err, tokens.ErrReauthRequired) {
			t.Fatalf("Invalidate err = %v", err)
		}
	}
	if after := e.fake.Stats().TokenRequests; after != before {
		t.Fatalf("%d token requests after needs_reauth, want 0", after-before)
	}
	if len(reauths) != 1 {
		t.Fatalf("OnNeedsReauth called %d times, want 1", len(reauths))
	}
	if due := must[[]string](t)(e.store(nil).Due(bg(t), e.clock.Now().Add(24*time.Hour), 100)); len(due) != 0 {
		t.Fatalf("due index still lists %v", due)
	}
	// Re-authorize through a new code exchange.
	p := e.fake.SeedConnection("ws-revoked")
	must[tokens.Token](t)(e.store(nil).Connect(bg(t), "ws-revoked",
		&tokens.Grant{AccessToken: p.AccessToken, RefreshToken: p.RefreshToken}, tokens.Timing{}, tokens.ConnectOptions{}))
	tok := must[tokens.Token](t)(src.Token(bg(t), "ws-revoked"))
	if tok.AccessToken != p.AccessToken {
		t.Fatal("re-authorized connection does not serve the new token")
	}
	if !hasEvent(t, e, "ws-revoked", tokens.EventReauthorized) {
		t.Fatal("no reauthorized event")
	}
}

// Invariant 7: a 5xx is an unknown outcome: retried with the same refresh
// token, and the connection survives.
func TestInv7ServerErrorRetriedWithSameToken(t *testing.T) {
	onBackends(t, true, testInv7ServerErrorRetriedWithSameToken)
}

func testInv7ServerErrorRetriedWithSameToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t, notionfake.Options{})
	e.connect("ws-5xx")
	src := e.source(func(c *tokens.Config) { c.RetryBackoff = time.Millisecond })
	e.fake.FailNext(2, 502)
	e.expire()
	tok := must[tokens.Token](t)(src.Token(bg(t), "ws-5xx"))
	if tok.AccessToken != e.current("ws-5xx").AccessToken {
		t.Fatal("wrong token")
	}
	if st := e.fake.Stats(); st.RefreshGrants != 1 || st.TokenRequests != 3 || st.InvalidGrants != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// Invariant 7: a rotation whose response was dropped, followed by
// invalid_grant on the retry, is recorded as a lost response, not a
// revocation.
func TestInv7DroppedRotationIsReportedAsLost(t *testing.T) {
	onBackends(t, true, testInv7DroppedRotationIsReportedAsLost)
}

func testInv7DroppedRotationIsReportedAsLost(t *testing.T) {
	t.Parallel()
	e := newEnv(t, notionfake.Options{})
	e.connect("ws-drop")
	src := e.source(func(c *tokens.Config) { c.RetryBackoff = time.Millisecond })
	e.fake.RotateThenDropNext(1)
	e.expire()
	_, err := src.Token(bg(t), "ws-drop")
	if !isReauth(err, tokens.ReasonLostRotation) {
		t.Fatalf("err = %v, want needs re-authorization (lost_rotation_response)", err)
	}
	conn := must[*tokens.Connection](t)(e.store(nil).Get(bg(t), "ws-drop"))
	if conn.Status != tokens.StatusNeedsReauth || conn.Reason != tokens.ReasonLostRotation {
		t.Fatalf("stored %s/%s", conn.Status, conn.Reason)
	}
}

// Invariant 7: a refresh that keeps failing with 5xx backs off per
// connection instead of storming the endpoint, and serves the still-valid
// access token meanwhile.
func TestInv7TransientFailureBacksOff(t *testing.T) {
	onBackends(t, true, testInv7TransientFailureBacksOff)
}

func testInv7TransientFailureBacksOff(t *testing.T) {
	t.Parallel()
	e := newEnv(t, notionfake.Options{})
	p := e.connect("ws-backoff")
	src := e.source(func(c *tokens.Config) { c.RetryBackoff = time.Millisecond; c.UnknownOutcomeRetries = 1 })
	e.fake.FailNext(100, 500)
	e.expire() // due, but the access token is still valid for 5 more minutes
	for range 20 {
		tok, err := src.Token(bg(t), "ws-backoff")
		if err != nil || tok.AccessToken != p.AccessToken {
			t.Fatalf("got %v, %v; want the still-valid token", tok, err)
		}
	}
	if n := e.fake.Stats().TokenRequests; n != 2 {
		t.Fatalf("%d token requests, want 2 (one attempt and its retry, then backoff)", n)
	}
	e.clock.Advance(10 * time.Minute) // the backoff passed and the access token expired
	if _, err := src.Token(bg(t), "ws-backoff"); err == nil {
		// the fake still has failures queued: expect a transient error
		t.Fatal("want a transient error while the endpoint fails")
	} else if d, ok := tokens.RetryDelay(err); !ok || d <= 0 {
		t.Fatalf("err = %v, want a TransientError with a delay", err)
	}
	conn := must[*tokens.Connection](t)(e.store(nil).Get(bg(t), "ws-backoff"))
	if conn.Status != tokens.StatusActive || conn.Failures != 2 {
		t.Fatalf("conn %+v: a transient failure must not change the status", conn)
	}
}

// Invariant 8: fifty 401s for the same token cause one refresh; a 401 for
// a token that was already replaced causes none.
func TestInv8UnauthorizedRefreshesOnce(t *testing.T) {
	onBackends(t, true, testInv8UnauthorizedRefreshesOnce)
}

func testInv8UnauthorizedRefreshesOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, notionfake.Options{})
	p := e.connect("ws-401")
	srcs := []*tokens.Source{e.source(nil), e.source(nil)}
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			tok, err := srcs[i%2].Invalidate(bg(t), "ws-401", p.AccessToken)
			if err != nil {
				t.Error(err)
			} else if tok.AccessToken == p.AccessToken {
				t.Error("Invalidate returned the failed token")
			}
		})
	}
	wg.Wait()
	if n := e.fake.Stats().RefreshGrants; n != 1 {
		t.Fatalf("%d refresh grants for 50 401s, want 1", n)
	}
	// A late 401 for the old token: the stored token is already newer.
	if _, err := srcs[0].Invalidate(bg(t), "ws-401", p.AccessToken); err != nil {
		t.Fatal(err)
	}
	if n := e.fake.Stats().RefreshGrants; n != 1 {
		t.Fatalf("a stale 401 caused a refresh (%d grants)", n)
	}
}

// Invariant 9: the due index is ordered by refresh time and jittered, so
// the scheduler's cost follows the number due and a fleet connected
// together does not refresh in lockstep.
func TestInv9DueIndexByExpiryWithJitter(t *testing.T) {
	onBackends(t, true, testInv9DueIndexByExpiryWithJitter)
}

func testInv9DueIndexByExpiryWithJitter(t *testing.T) {
	t.Parallel()
	e := newEnv(t, notionfake.Options{})
	st := e.store(nil)
	timing := tokens.Timing{AccessTokenLifetime: time.Hour, RefreshMargin: 10 * time.Minute, RefreshJitter: 5 * time.Minute}
	dues := map[time.Time]bool{}
	for i := range 40 {
		id := fmt.Sprintf("c%02d", i)
		must[tokens.Token](t)(st.Connect(bg(t), id, &tokens.Grant{AccessToken: "a" + id, RefreshToken: "r" + id}, timing, tokens.ConnectOptions{}))
		c := must[*tokens.Connection](t)(st.Get(bg(t), id))
		lo, hi := c.AccessExpiry.Add(-15*time.Minute), c.AccessExpiry.Add(-10*time.Minute)
		if c.RefreshDue.Before(lo) || c.RefreshDue.After(hi) {
			t.Fatalf("due %s outside [expiry-15m, expiry-10m]", c.RefreshDue)
		}
		dues[c.RefreshDue] = true
	}
	if len(dues) < 30 {
		t.Fatalf("only %d distinct due times for 40 connections: no jitter", len(dues))
	}
	now := e.clock.Now()
	if got := must[[]string](t)(st.Due(bg(t), now.Add(40*time.Minute), 1000)); len(got) != 0 {
		t.Fatalf("%d due 40 minutes in, want 0", len(got))
	}
	all := must[[]string](t)(st.Due(bg(t), now.Add(time.Hour), 1000))
	if len(all) != 40 {
		t.Fatalf("%d due after an hour, want 40", len(all))
	}
	var prev time.Time
	for _, id := range all {
		c := must[*tokens.Connection](t)(st.Get(bg(t), id))
		if c.RefreshDue.Before(prev) {
			t.Fatal("due index not ordered by due time")
		}
		prev = c.RefreshDue
	}
	if got := must[[]string](t)(st.Due(bg(t), now.Add(time.Hour), 7)); len(got) != 7 {
		t.Fatalf("limit not honoured: %d", len(got))
	}
}

// Invariant 9: Refresh (the scheduler's call) refreshes only what is due.
func TestInv9ProactiveRefreshOnlyWhenDue(t *testing.T) {
	onBackends(t, true, testInv9ProactiveRefreshOnlyWhenDue)
}

func testInv9ProactiveRefreshOnlyWhenDue(t *testing.T) {
	t.Parallel()
	e := newEnv(t, notionfake.Options{})
	e.connect("ws-pro")
	src := e.source(nil)
	if err := src.Refresh(bg(t), "ws-pro"); err != nil {
		t.Fatal(err)
	}
	if n := e.fake.Stats().TokenRequests; n != 0 {
		t.Fatalf("refreshed a token that was not due (%d requests)", n)
	}
	e.expire()
	if err := src.Refresh(bg(t), "ws-pro"); err != nil {
		t.Fatal(err)
	}
	if n := e.fake.Stats().RefreshGrants; n != 1 {
		t.Fatalf("%d grants, want 1", n)
	}
}

// Paused connections refuse data calls but keep their grant alive.
func TestPausedConnection(t *testing.T) { onBackends(t, true, testPausedConnection) }

func testPausedConnection(t *testing.T) {
	t.Parallel()
	e := newEnv(t, notionfake.Options{})
	e.connect("ws-pause")
	src := e.source(nil)
	st := e.store(nil)
	if err := st.Pause(bg(t), "ws-pause"); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Token(bg(t), "ws-pause"); !errors.Is(err, tokens.ErrPaused) {
		t.Fatalf("err = %v, want ErrPaused", err)
	}
	e.expire()
	if err := src.Refresh(bg(t), "ws-pause"); err != nil {
		t.Fatalf("proactive refresh of a paused connection: %v", err)
	}
	if err := st.Resume(bg(t), "ws-pause"); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Token(bg(t), "ws-pause"); err != nil {
		t.Fatal(err)
	}
}

// Invariant 11: tokens are sealed at rest, never in logs or errors.
func TestInv11SecretsStaySecret(t *testing.T) { onBackends(t, true, testInv11SecretsStaySecret) }

func testInv11SecretsStaySecret(t *testing.T) {
	t.Parallel()
	e := newEnv(t, notionfake.Options{EchoTokensInErrors: true})
	p := e.connect("ws-secret")
	src := e.source(func(c *tokens.Config) { c.RetryBackoff = time.Millisecond })
	e.expire()
	tok := must[tokens.Token](t)(src.Token(bg(t), "ws-secret"))
	cur := e.current("ws-secret")
	// Now revoke and make it fail, with a server that echoes tokens.
	e.fake.Revoke("ws-secret")
	e.expire()
	_, err := src.Token(bg(t), "ws-secret")
	if err == nil {
		t.Fatal("want an error after revocation")
	}
	for _, s := range []string{p.AccessToken, p.RefreshToken, cur.AccessToken, cur.RefreshToken} {
		if strings.Contains(err.Error(), s) {
			t.Fatal("a token leaked into an error")
		}
		if strings.Contains(fmt.Sprintf("%v %+v %#v %s", tok, tok, tok, must[[]byte](t)(tok.MarshalJSON())), s) {
			t.Fatal("Token prints its secret")
		}
	}
	e.assertNoSecrets(p.AccessToken, p.RefreshToken, cur.AccessToken, cur.RefreshToken)
}

// Invariant 11: keys rotate: a record sealed with an old key stays readable
// and is re-sealed with the new primary on its next write.
func TestInv11KeyRotation(t *testing.T) { onBackends(t, true, testInv11KeyRotation) }

func testInv11KeyRotation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, notionfake.Options{})
	e.connect("ws-rekey") // sealed with k1
	rotated := newKeyring(t, "k2", "k1")
	src := e.source(func(c *tokens.Config) { c.Store = e.store(rotated) })
	must[tokens.Token](t)(src.Token(bg(t), "ws-rekey"))
	e.expire()
	must[tokens.Token](t)(src.Token(bg(t), "ws-rekey"))
	conn := must[*tokens.Connection](t)(e.store(rotated).Get(bg(t), "ws-rekey"))
	if conn.KeyID != "k2" {
		t.Fatalf("key id = %q after a refresh, want k2", conn.KeyID)
	}
	wrongKeys := e.source(func(c *tokens.Config) { c.Store = e.store(newKeyring(t, "k3")) })
	_, err := wrongKeys.Token(bg(t), "ws-rekey")
	if err == nil || !strings.Contains(err.Error(), `"k2"`) || errors.Is(err, tokens.ErrTransient) {
		t.Fatalf("err = %v, want a clear missing-key error naming k2", err)
	}
}

// Invariant 12: every change is on the timeline, capped.
func TestInv12Timeline(t *testing.T) { onBackends(t, true, testInv12Timeline) }

func testInv12Timeline(t *testing.T) {
	t.Parallel()
	e := newEnv(t, notionfake.Options{})
	e.connect("ws-timeline")
	src := e.source(func(c *tokens.Config) { c.RetryBackoff = time.Millisecond; c.UnknownOutcomeRetries = 1 })
	e.expire()
	must[tokens.Token](t)(src.Token(bg(t), "ws-timeline"))
	e.fake.FailNext(2, 500)
	e.expire()
	_, _ = src.Token(bg(t), "ws-timeline")
	e.clock.Advance(time.Hour)
	e.fake.Revoke("ws-timeline")
	_, _ = src.Token(bg(t), "ws-timeline")
	p := e.fake.SeedConnection("ws-timeline")
	must[tokens.Token](t)(e.store(nil).Connect(bg(t), "ws-timeline",
		&tokens.Grant{AccessToken: p.AccessToken, RefreshToken: p.RefreshToken}, tokens.Timing{}, tokens.ConnectOptions{}))
	var kinds []string
	for _, ev := range must[[]tokens.Event](t)(e.store(nil).Events(bg(t), "ws-timeline")) {
		kinds = append(kinds, ev.Kind)
	}
	want := []string{tokens.EventReauthorized, tokens.EventNeedsReauth, tokens.EventRefreshFailed, tokens.EventRefreshed, tokens.EventConnected}
	if strings.Join(kinds, ",") != strings.Join(want, ",") {
		t.Fatalf("timeline %v, want %v", kinds, want)
	}

	capped, err := tokens.NewStore(tokens.StoreConfig{Redis: e.rdb, Keyring: e.keys, KeyPrefix: e.prefix, EventsCap: 3})
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		_ = capped.Pause(bg(t), "ws-timeline")
		_ = capped.Resume(bg(t), "ws-timeline")
	}
	if n := len(must[[]tokens.Event](t)(capped.Events(bg(t), "ws-timeline"))); n != 3 {
		t.Fatalf("%d events kept, want the cap of 3", n)
	}
}

// Disconnecting revokes the grant at the provider even for a paused
// connection, deletes the pair, and a refresh in flight cannot write it back.
func TestDisconnectRevokesAndDeletes(t *testing.T) {
	onBackends(t, true, testDisconnectRevokesAndDeletes)
}

func testDisconnectRevokesAndDeletes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, notionfake.Options{})
	p := e.connect("ws-bye")
	src := e.source(nil)
	st := e.store(nil)
	if err := st.Pause(bg(t), "ws-bye"); err != nil {
		t.Fatal(err)
	}
	revoked, err := src.DisconnectAndRevoke(bg(t), "ws-bye", e.provider())
	if err != nil || !revoked {
		t.Fatalf("revoked=%v err=%v", revoked, err)
	}
	if n := e.fake.Stats().Revocations; n != 1 {
		t.Fatalf("fake saw %d revocations, want 1", n)
	}
	if _, err := e.fake.CheckAccessToken(p.AccessToken); err == nil {
		t.Fatal("the access token still works at the provider")
	}
	conn := must[*tokens.Connection](t)(st.Get(bg(t), "ws-bye"))
	if conn.Status != tokens.StatusDisconnected || conn.HasRefreshToken {
		t.Fatalf("after disconnect: %+v", conn)
	}
	if _, err := src.Token(bg(t), "ws-bye"); !errors.Is(err, tokens.ErrDisconnected) {
		t.Fatalf("Token err = %v, want ErrDisconnected", err)
	}
	e.assertNoSecrets(p.AccessToken, p.RefreshToken)
}

// Rekey re-seals a record with the new primary key without moving its
// version, so it can never fence out a refresh.
func TestRekey(t *testing.T) { onBackends(t, true, testRekey) }

func testRekey(t *testing.T) {
	t.Parallel()
	e := newEnv(t, notionfake.Options{})
	p := e.connect("ws-rekey2") // sealed with k1
	rotated := e.store(newKeyring(t, "k2", "k1"))
	wrote, err := rotated.Rekey(bg(t), "ws-rekey2")
	if err != nil || !wrote {
		t.Fatalf("wrote=%v err=%v", wrote, err)
	}
	conn := must[*tokens.Connection](t)(rotated.Get(bg(t), "ws-rekey2"))
	if conn.KeyID != "k2" || conn.Version != 1 {
		t.Fatalf("after rekey: key %s version %d, want k2 and 1", conn.KeyID, conn.Version)
	}
	if wrote, _ := rotated.Rekey(bg(t), "ws-rekey2"); wrote {
		t.Fatal("a second rekey wrote again")
	}
	// Only k2 is needed now, and the pair is intact.
	src := e.source(func(c *tokens.Config) { c.Store = e.store(newKeyring(t, "k2")) })
	tok := must[tokens.Token](t)(src.Token(bg(t), "ws-rekey2"))
	if tok.AccessToken != p.AccessToken {
		t.Fatal("access token changed by rekey")
	}
	e.expire()
	if _, err := src.Token(bg(t), "ws-rekey2"); err != nil {
		t.Fatalf("refresh after rekey (the refresh token must be intact): %v", err)
	}
}

// GetMany reads many connections in one round trip, missing ones reported
// per id.
func TestGetMany(t *testing.T) { onBackends(t, true, testGetMany) }

func testGetMany(t *testing.T) {
	t.Parallel()
	e := newEnv(t, notionfake.Options{})
	e.connect("gm-1")
	e.connect("gm-2")
	conns, errs, err := e.store(nil).GetMany(bg(t), []string{"gm-1", "nope", "gm-2"})
	if err != nil {
		t.Fatal(err)
	}
	if conns[0].ID != "gm-1" || conns[2].ID != "gm-2" || conns[1] != nil {
		t.Fatalf("conns %+v", conns)
	}
	if !errors.Is(errs[1], tokens.ErrNotFound) || errs[0] != nil || errs[2] != nil {
		t.Fatalf("errs %v", errs)
	}
}
