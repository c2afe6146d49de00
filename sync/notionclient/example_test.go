package notionclient_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/notionsync/notionsync/sync/notionclient"
	"github.com/notionsync/notionsync/tokens"
)

// staticTokens is a TokenSource for the example; production code passes a
// tokens.Source.
type staticTokens struct{}

func (staticTokens) Token(_ context.Context, connID string) (tokens.Token, error) {
	return tokens.Token{ConnID: connID, AccessToken: "example-token"}, nil
}

func (staticTokens) Invalidate(ctx context.Context, connID, _ string) (tokens.Token, error) {
	return staticTokens{}.Token(ctx, connID)
}

func ExampleClient_For() {
	// A stand-in for api.notion.com.
	notion := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Notion-Request-Id", "req-123")
		if r.URL.Path != "/v1/pages/known" {
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"object":"error","status":404,"code":"object_not_found","message":"Could not find page."}`)
			return
		}
		_, _ = io.WriteString(w, `{"object":"page","id":"known","properties":{}}`)
	}))
	defer notion.Close()

	rdb := notionclient.RedisForExamples()
	defer rdb.Close()
	c, err := notionclient.New(rdb, staticTokens{}, notionclient.Config{
		BaseURL:   notion.URL,
		KeyPrefix: fmt.Sprintf("example:%d:", time.Now().UnixNano()),
	})
	if err != nil {
		panic(err)
	}
	defer c.CloseIdleConnections()

	nc := c.For("conn-42")
	page, err := nc.Page.Get(context.Background(), "known")
	fmt.Println(page.ID, err)

	_, err = nc.Page.Get(context.Background(), "missing")
	var apiErr *notionclient.APIError
	if errors.As(err, &apiErr) {
		fmt.Println(notionclient.IsNotFound(err), apiErr.Code, apiErr.RequestID)
	}
	// Output:
	// known <nil>
	// true object_not_found req-123
}
