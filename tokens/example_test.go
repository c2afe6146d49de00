package tokens_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/notionsync/notionsync/internal/notionfake"
	"github.com/notionsync/notionsync/tokens"
	"github.com/notionsync/notionsync/tokens/notionauth"
)

// Example shows a Source handing out tokens for a connection whose grant
// came from a code exchange, and what a caller does with its errors.
func Example() {
	ctx := context.Background()
	fake := notionfake.New(notionfake.Options{})
	hs := httptest.NewServer(fake.Handler())
	defer hs.Close()
	rdb := redis.NewClient(&redis.Options{Addr: redisSrv.Addr()})
	defer rdb.Close()

	keyring, _ := tokens.NewKeyring(tokens.Key{ID: "2026-11", Secret: keyBytes("example")})
	store, _ := tokens.NewStore(tokens.StoreConfig{Redis: rdb, Keyring: keyring, KeyPrefix: fmt.Sprintf("example-%d:", time.Now().UnixNano())})
	notion, _ := notionauth.New(notionauth.Config{ClientID: fake.ClientID(), ClientSecret: fake.ClientSecret(), BaseURL: hs.URL})
	src, _ := tokens.NewSource(ctx, tokens.Config{Store: store, Provider: notion})
	defer src.Close()

	// A code exchange (the OAuth callback) stores the first pair.
	code := fake.IssueCode("https://example.com/callback")
	grant, _ := notion.Exchange(ctx, code, "https://example.com/callback")
	_, _ = store.Connect(ctx, "acme", &grant.Grant, tokens.Timing{}, tokens.ConnectOptions{
		Meta: map[string]string{"workspace_id": grant.WorkspaceID},
	})

	tok, err := src.Token(ctx, "acme")
	switch {
	case errors.Is(err, tokens.ErrReauthRequired):
		fmt.Println("ask the user to reconnect")
	case errors.Is(err, tokens.ErrTransient):
		d, _ := tokens.RetryDelay(err)
		fmt.Println("try again in", d.Round(time.Second))
	case err != nil:
		fmt.Println("error:", err)
	default:
		fmt.Println("token version", tok.Version, "valid for", time.Until(tok.Expiry).Round(time.Hour))
	}
	// Output: token version 1 valid for 1h0m0s
}
