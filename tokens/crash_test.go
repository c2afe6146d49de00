package tokens_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/notionsync/notionsync/internal/notionfake"
	"github.com/notionsync/notionsync/internal/redistest"
	"github.com/notionsync/notionsync/tokens"
)

// A process SIGKILLed at any point of a refresh leaves the connection either
// refreshed correctly (by the next process, once the dead holder's lock
// expires) or marked needs_reauth with the lost-response reason: never
// silently broken, and never marked "revoked".
func TestSIGKILLDuringRefresh(t *testing.T) { onBackends(t, true, testSIGKILLDuringRefresh) }

func testSIGKILLDuringRefresh(t *testing.T) {
	t.Parallel()
	const lockTTL = 1500 * time.Millisecond
	cases := []struct {
		name string
		mode string
		// rotated: whether the fake committed the rotation before the kill.
		rotated bool
	}{
		{"before the call", "kill-before", false},
		{"during the call, not yet rotated", "kill-during", false},
		{"during the call, rotated", "kill-during", true},
		{"after the response, before the write", "kill-after", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, notionfake.Options{})
			e.connect("ws-kill")
			e.expire()
			h := e.startHelper(tc.mode, "ws-kill", 1, lockTTL)
			var gate *notionfake.Gate
			if tc.mode == "kill-during" {
				gate = e.fake.BlockRefreshWith(notionfake.GateOptions{RotateBeforeBlock: tc.rotated})
			}
			h.send(t, "GO")
			switch tc.mode {
			case "kill-before":
				h.expect(t, "AT before")
			case "kill-after":
				h.expect(t, "AT after")
			case "kill-during":
				<-gate.Arrived()
			}
			h.kill()
			if gate != nil {
				// A request parked before its rotation is dropped unprocessed
				// (Abort); one parked after it has rotated already.
				if tc.rotated {
					gate.Release()
				} else {
					gate.Abort()
				}
			}

			src := e.source(func(c *tokens.Config) { c.LockTTL, c.CallTimeout = lockTTL, lockTTL/3 })
			tok, err := src.Token(bg(t), "ws-kill")
			conn := must[*tokens.Connection](t)(e.store(nil).Get(bg(t), "ws-kill"))
			if tc.rotated {
				if !isReauth(err, tokens.ReasonLostRotation) {
					t.Fatalf("err = %v, want needs re-authorization (lost_rotation_response)", err)
				}
				if conn.Status != tokens.StatusNeedsReauth || conn.Reason != tokens.ReasonLostRotation {
					t.Fatalf("stored %s/%s", conn.Status, conn.Reason)
				}
				return
			}
			if err != nil {
				t.Fatalf("refresh after the kill: %v", err)
			}
			if tok.AccessToken != e.current("ws-kill").AccessToken || conn.Status != tokens.StatusActive {
				t.Fatalf("connection not refreshed correctly: %+v", conn)
			}
			if st := e.fake.Stats(); st.InvalidGrants != 0 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

// A Redis restart with AOF on loses no token pair, and Sources keep working
// across it (their notification subscription recovers).
func TestRedisRestartKeepsTokens(t *testing.T) {
	t.Parallel()
	srv := redistest.StartTB(t, redistest.Options{AOF: true})
	e := newEnv(t, notionfake.Options{})
	e.rdb = redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: 5})
	t.Cleanup(func() { e.rdb.Close() })
	e.connect("ws-aof")
	src := e.source(nil)
	e.expire()
	before := must[tokens.Token](t)(src.Token(bg(t), "ws-aof"))

	srv.Kill() // a crash, not a clean shutdown
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	conn := must[*tokens.Connection](t)(e.store(nil).Get(bg(t), "ws-aof"))
	if conn.Version != before.Version {
		t.Fatalf("version %d after restart, want %d", conn.Version, before.Version)
	}
	// The stored refresh token is the live one: the next rotation works.
	e.expire()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	after, err := src.Token(ctx, "ws-aof")
	if err != nil {
		t.Fatal(err)
	}
	if after.Version != before.Version+1 || after.AccessToken != e.current("ws-aof").AccessToken {
		t.Fatalf("after restart got %v", after)
	}
	if st := e.fake.Stats(); st.InvalidGrants != 0 || st.RefreshGrants != 2 {
		t.Fatalf("stats %+v", st)
	}
}
