package tokens_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/notionsync/notionsync/internal/redistest"
	"github.com/notionsync/notionsync/tokens"
)

func TestCheckKeys(t *testing.T) { onBackends(t, true, testCheckKeys) }

func testCheckKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb := backendClient(t)
	prefix := redistest.UniquePrefix(t)
	key := func(id string, b byte) tokens.Key {
		secret := make([]byte, 32)
		secret[0] = b
		return tokens.Key{ID: id, Secret: secret}
	}
	store := func(keys ...tokens.Key) *tokens.Store {
		kr, err := tokens.NewKeyring(keys...)
		if err != nil {
			t.Fatal(err)
		}
		s, err := tokens.NewStore(tokens.StoreConfig{Redis: rdb, Keyring: kr, KeyPrefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	old, cur := key("old", 1), key("cur", 2)
	if err := store(cur).CheckKeys(ctx, 4); err != nil {
		t.Fatalf("no records: %v", err)
	}
	// Ten records under "old", then ten under "cur" (after a rotation).
	for i := range 20 {
		s := store(old)
		if i >= 10 {
			s = store(cur, old)
		}
		if _, err := s.Connect(ctx, fmt.Sprintf("c%02d", i), &tokens.Grant{AccessToken: "a", RefreshToken: "r"}, tokens.Timing{}, tokens.ConnectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := store(cur, old).CheckKeys(ctx, 4); err != nil {
		t.Errorf("both keys configured: %v", err)
	}
	// The retired key removed too early: the oldest records need it.
	var ke *tokens.KeyError
	err := store(cur).CheckKeys(ctx, 4)
	if !errors.As(err, &ke) || !errors.Is(err, tokens.ErrKeyUnavailable) || ke.KeyID != "old" || !ke.Missing {
		t.Errorf("retired key missing: %v (%+v)", err, ke)
	}
	// The new key missing: the newest records need it.
	err = store(old).CheckKeys(ctx, 4)
	if !errors.As(err, &ke) || ke.KeyID != "cur" || !ke.Missing {
		t.Errorf("current key missing: %v (%+v)", err, ke)
	}
	// The right ids with other material.
	err = store(key("cur", 9), key("old", 9)).CheckKeys(ctx, 4)
	if !errors.As(err, &ke) || ke.Missing {
		t.Errorf("wrong material: %v (%+v)", err, ke)
	}
}
