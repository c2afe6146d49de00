package notionauth_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"

	"github.com/notionsync/notionsync/internal/notionfake"
	"github.com/notionsync/notionsync/tokens"
	"github.com/notionsync/notionsync/tokens/notionauth"
)

// ExampleClient_Refresh spends a refresh token against the Notion fake, then
// shows how a second use of the same token is classified.
func ExampleClient_Refresh() {
	fake := notionfake.New(notionfake.Options{})
	srv := httptest.NewServer(fake.Handler())
	defer srv.Close()
	defer fake.Close()

	pair := fake.SeedConnection("workspace-1")

	client, err := notionauth.New(notionauth.Config{
		ClientID:     fake.ClientID(),
		ClientSecret: fake.ClientSecret(),
		BaseURL:      srv.URL, // default: https://api.notion.com
		HTTPClient:   srv.Client(),
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	grant, err := client.Refresh(context.Background(), pair.RefreshToken)
	if err != nil {
		fmt.Println(err)
		return
	}
	// Persist grant.RefreshToken before using grant.AccessToken: the old
	// refresh token is dead now.
	fmt.Println("rotated:", grant.RefreshToken != "" && grant.RefreshToken != pair.RefreshToken)

	_, err = client.Refresh(context.Background(), pair.RefreshToken)
	var pe *tokens.ProviderError
	if errors.As(err, &pe) {
		fmt.Println("reuse:", pe.Kind, pe.StatusCode)
	}
	// Output:
	// rotated: true
	// reuse: invalid_grant 400
}

// ExampleClient_Exchange completes the authorization-code flow against the
// Notion fake.
func ExampleClient_Exchange() {
	fake := notionfake.New(notionfake.Options{})
	srv := httptest.NewServer(fake.Handler())
	defer srv.Close()
	defer fake.Close()

	client, err := notionauth.New(notionauth.Config{
		ClientID: fake.ClientID(), ClientSecret: fake.ClientSecret(),
		BaseURL: srv.URL, HTTPClient: srv.Client(),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	const redirectURI = "https://app.example.com/oauth/callback"
	// A browser would visit client.AuthorizeURL(redirectURI, state) and come
	// back with a code; the fake issues one directly.
	code := fake.IssueCodeFor("workspace-1", redirectURI)

	ex, err := client.Exchange(context.Background(), code, redirectURI)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(ex.WorkspaceID, ex.AccessToken != "", ex.RefreshToken != "")
	// Output: workspace-1 true true
}
