package tokens_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"golang.org/x/oauth2"

	"github.com/notionsync/notionsync/internal/notionfake"
)

func TestOAuth2TokenSource(t *testing.T) {
	t.Parallel()
	e := newEnv(t, notionfake.Options{})
	p := e.connect("ws-oauth2")
	src := e.source(nil)
	var got string
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Get("Authorization")
	}))
	defer api.Close()
	client := oauth2.NewClient(bg(t), src.OAuth2(bg(t), "ws-oauth2"))
	resp, err := client.Get(api.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got != "Bearer "+p.AccessToken {
		t.Fatal("the request did not carry the connection's bearer token")
	}
	e.expire()
	resp, err = client.Get(api.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got != "Bearer "+e.current("ws-oauth2").AccessToken {
		t.Fatal("the request did not carry the refreshed token")
	}
}
