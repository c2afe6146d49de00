package tokens_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/notionsync/notionsync/internal/notionfake"
	"github.com/notionsync/notionsync/tokens"
)

var testTiming = tokens.Timing{AccessTokenLifetime: time.Hour, RefreshMargin: 10 * time.Minute, RefreshJitter: time.Minute}

// An import that does not name its workspace learns it from the first
// refresh's token response, inside the fenced commit: the version moves by
// exactly one, and a workspace already known is never overwritten.
func TestRefreshLearnsMissingWorkspaceID(t *testing.T) {
	onBackends(t, true, testRefreshLearnsMissingWorkspaceID)
}

func testRefreshLearnsMissingWorkspaceID(t *testing.T) {
	t.Parallel()
	e := newEnv(t, notionfake.Options{})
	p := e.fake.SeedConnection("ws-learn")
	st := e.store(nil)
	ctx := context.Background()
	if _, err := st.Connect(ctx, "imported", &tokens.Grant{AccessToken: p.AccessToken, RefreshToken: p.RefreshToken},
		testTiming, tokens.ConnectOptions{Meta: map[string]string{"note": "from elsewhere"}, Imported: true}); err != nil {
		t.Fatal(err)
	}
	if c := must[*tokens.Connection](t)(st.Get(ctx, "imported")); c.Meta[tokens.MetaWorkspaceID] != "" {
		t.Fatalf("workspace known before any refresh: %v", c.Meta)
	}
	src := e.source(nil)
	e.expire()
	if _, err := src.Token(bg(t), "imported"); err != nil {
		t.Fatal(err)
	}
	c := must[*tokens.Connection](t)(st.Get(ctx, "imported"))
	if c.Meta[tokens.MetaWorkspaceID] != p.WorkspaceID || c.Meta["note"] != "from elsewhere" || c.Version != 2 {
		t.Fatalf("after the first refresh: v%d meta %v, want v2 with workspace %q and the note kept",
			c.Version, c.Meta, p.WorkspaceID)
	}

	// A stored workspace id is never replaced by a refresh.
	if _, err := st.Connect(ctx, "pinned", &tokens.Grant{AccessToken: e.current("ws-learn").AccessToken,
		RefreshToken: e.current("ws-learn").RefreshToken}, testTiming,
		tokens.ConnectOptions{Meta: map[string]string{tokens.MetaWorkspaceID: "ws-other"}, Imported: true}); err != nil {
		t.Fatal(err)
	}
	e.expire()
	if _, err := src.Token(bg(t), "pinned"); err != nil {
		t.Fatal(err)
	}
	if c := must[*tokens.Connection](t)(st.Get(ctx, "pinned")); c.Meta[tokens.MetaWorkspaceID] != "ws-other" {
		t.Fatalf("a refresh replaced the stored workspace: %v", c.Meta)
	}
}

// Every Connect replaces the link nonce; a Connect that expects a nonce
// writes nothing when it changed; EnsureLinkNonce gives an old record one
// without moving its version.
func TestLinkNonce(t *testing.T) { onBackends(t, true, testLinkNonce) }

func testLinkNonce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, notionfake.Options{})
	st := e.store(nil)
	ctx := context.Background()
	if _, err := st.EnsureLinkNonce(ctx, "nobody"); !errors.Is(err, tokens.ErrNotFound) {
		t.Fatalf("EnsureLinkNonce of a missing connection: %v", err)
	}
	e.connect("ws-n")
	c1 := must[*tokens.Connection](t)(st.Get(ctx, "ws-n"))
	if c1.LinkNonce == "" {
		t.Fatal("Connect stored no link nonce")
	}
	if n := must[string](t)(st.EnsureLinkNonce(ctx, "ws-n")); n != c1.LinkNonce {
		t.Fatalf("EnsureLinkNonce replaced an existing nonce")
	}
	g := &tokens.Grant{AccessToken: "a2", RefreshToken: "r2"}
	if _, err := st.Connect(ctx, "ws-n", g, testTiming, tokens.ConnectOptions{ExpectLinkNonce: "stale"}); !errors.Is(err, tokens.ErrLinkNonceChanged) {
		t.Fatalf("Connect with a stale nonce: %v", err)
	}
	if c := must[*tokens.Connection](t)(st.Get(ctx, "ws-n")); c.Version != c1.Version {
		t.Fatalf("a refused Connect wrote: v%d -> v%d", c1.Version, c.Version)
	}
	if _, err := st.Connect(ctx, "ws-n", g, testTiming, tokens.ConnectOptions{ExpectLinkNonce: c1.LinkNonce}); err != nil {
		t.Fatal(err)
	}
	c2 := must[*tokens.Connection](t)(st.Get(ctx, "ws-n"))
	if c2.LinkNonce == "" || c2.LinkNonce == c1.LinkNonce {
		t.Fatal("a reconnect did not replace the link nonce")
	}
	// The used nonce is dead now.
	if _, err := st.Connect(ctx, "ws-n", g, testTiming, tokens.ConnectOptions{ExpectLinkNonce: c1.LinkNonce}); !errors.Is(err, tokens.ErrLinkNonceChanged) {
		t.Fatalf("Connect with a spent nonce: %v", err)
	}

	// A record from before nonces existed gets one, version untouched.
	if err := e.rdb.HDel(ctx, e.key("conn:", "ws-n"), "nonce").Err(); err != nil {
		t.Fatal(err)
	}
	n := must[string](t)(st.EnsureLinkNonce(ctx, "ws-n"))
	c3 := must[*tokens.Connection](t)(st.Get(ctx, "ws-n"))
	if n == "" || c3.LinkNonce != n || c3.Version != c2.Version {
		t.Fatalf("EnsureLinkNonce on an old record: nonce %q stored %q v%d (was v%d)", n, c3.LinkNonce, c3.Version, c2.Version)
	}
}
