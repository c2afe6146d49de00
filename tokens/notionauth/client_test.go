package notionauth

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/notionsync/notionsync/internal/notionfake"
	"github.com/notionsync/notionsync/tokens"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const callback = "https://app.example.com/oauth/callback"

// newFakeClient serves a notionfake over httptest and returns a Client for it.
func newFakeClient(t *testing.T, opts notionfake.Options) (*notionfake.Server, *Client) {
	t.Helper()
	s, ts := notionfake.NewTest(t, opts)
	c, err := New(Config{
		ClientID:     s.ClientID(),
		ClientSecret: s.ClientSecret(),
		BaseURL:      ts.URL,
		HTTPClient:   ts.Client(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return s, c
}

// newHandClient serves h over httptest and returns a Client for it.
func newHandClient(t *testing.T, h http.HandlerFunc, mods ...func(*Config)) *Client {
	t.Helper()
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	cfg := Config{ClientID: "cid", ClientSecret: clientSecret, BaseURL: ts.URL, HTTPClient: ts.Client()}
	for _, m := range mods {
		m(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const clientSecret = "secret_clientSECRETvalue0123456789"

// providerError asserts err is a *tokens.ProviderError of kind want.
func providerError(t *testing.T, err error, want tokens.ErrorKind) *tokens.ProviderError {
	t.Helper()
	var pe *tokens.ProviderError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not a *tokens.ProviderError", err, err)
	}
	if pe.Kind != want {
		t.Fatalf("kind %v, want %v (error: %v)", pe.Kind, want, err)
	}
	return pe
}

func TestRefreshRotates(t *testing.T) {
	s, c := newFakeClient(t, notionfake.Options{})
	p := s.SeedConnection("ws")
	g, err := c.Refresh(context.Background(), p.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if g.AccessToken == "" || g.AccessToken == p.AccessToken || g.RefreshToken == "" || g.RefreshToken == p.RefreshToken {
		t.Fatalf("grant %+v does not rotate %+v", g, p)
	}
	if g.ExpiresIn != 0 {
		t.Fatalf("ExpiresIn = %v without expires_in", g.ExpiresIn)
	}
	if _, err := c.Refresh(context.Background(), g.RefreshToken); err != nil {
		t.Fatalf("refresh with the rotated token: %v", err)
	}
	if n := s.RefreshGrantsFor("ws"); n != 2 {
		t.Fatalf("fake saw %d rotations", n)
	}
}

func TestRefreshExpiresIn(t *testing.T) {
	s, c := newFakeClient(t, notionfake.Options{ExpiresIn: 90 * time.Minute})
	g, err := c.Refresh(context.Background(), s.SeedConnection("").RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if g.ExpiresIn != 90*time.Minute {
		t.Fatalf("ExpiresIn = %v", g.ExpiresIn)
	}
}

func TestRefreshNullRefreshTokenKeepsEmpty(t *testing.T) {
	s, c := newFakeClient(t, notionfake.Options{NullRefreshToken: true})
	g, err := c.Refresh(context.Background(), s.SeedConnection("").RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if g.AccessToken == "" || g.RefreshToken != "" {
		t.Fatalf("grant %+v, want an access token and no refresh token", g)
	}
}

func TestRefreshReusedTokenIsInvalidGrant(t *testing.T) {
	for name, style := range map[string]notionfake.ErrorStyle{
		"oauth":  notionfake.ErrorStyleOAuth,
		"notion": notionfake.ErrorStyleNotion,
	} {
		t.Run(name, func(t *testing.T) {
			s, c := newFakeClient(t, notionfake.Options{ErrorStyle: style, EchoTokensInErrors: true})
			p := s.SeedConnection("ws")
			if _, err := c.Refresh(context.Background(), p.RefreshToken); err != nil {
				t.Fatal(err)
			}
			_, err := c.Refresh(context.Background(), p.RefreshToken)
			pe := providerError(t, err, tokens.KindInvalidGrant)
			if pe.StatusCode != 400 || pe.Code != "invalid_grant" || pe.Description == "" {
				t.Fatalf("error %+v", pe)
			}
			if strings.Contains(err.Error(), p.RefreshToken) || !strings.Contains(err.Error(), "[redacted]") {
				t.Fatalf("error text %q: the echoed token is not redacted", err)
			}
		})
	}
}

func TestRefreshRevokedIsInvalidGrant(t *testing.T) {
	s, c := newFakeClient(t, notionfake.Options{})
	p := s.SeedConnection("ws")
	s.Revoke("ws")
	_, err := c.Refresh(context.Background(), p.RefreshToken)
	providerError(t, err, tokens.KindInvalidGrant)
}

func TestRefreshInvalidClient(t *testing.T) {
	s, ts := notionfake.NewTest(t, notionfake.Options{})
	c, err := New(Config{ClientID: s.ClientID(), ClientSecret: "wrong-secret", BaseURL: ts.URL, HTTPClient: ts.Client()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Refresh(context.Background(), s.SeedConnection("").RefreshToken)
	pe := providerError(t, err, tokens.KindInvalidClient)
	if pe.StatusCode != 401 || pe.Code != "invalid_client" {
		t.Fatalf("error %+v", pe)
	}
	if strings.Contains(err.Error(), "wrong-secret") {
		t.Fatalf("error text %q holds the client secret", err)
	}
}

func TestRefreshRateLimited(t *testing.T) {
	s, c := newFakeClient(t, notionfake.Options{})
	p := s.SeedConnection("")
	s.RateLimitNext(1, 7*time.Second)
	_, err := c.Refresh(context.Background(), p.RefreshToken)
	pe := providerError(t, err, tokens.KindNotProcessed)
	if pe.StatusCode != 429 || pe.RetryAfter != 7*time.Second {
		t.Fatalf("error %+v", pe)
	}
	if _, err := c.Refresh(context.Background(), p.RefreshToken); err != nil {
		t.Fatalf("the token after a 429: %v", err)
	}
}

func TestRefreshServerErrorIsOutcomeUnknown(t *testing.T) {
	for _, status := range []int{500, 502, 503, 504, 529} {
		s, c := newFakeClient(t, notionfake.Options{})
		s.FailNext(1, status)
		_, err := c.Refresh(context.Background(), s.SeedConnection("").RefreshToken)
		if pe := providerError(t, err, tokens.KindOutcomeUnknown); pe.StatusCode != status {
			t.Fatalf("status %d: error %+v", status, pe)
		}
	}
}

func TestRefreshDroppedAfterRotationIsOutcomeUnknown(t *testing.T) {
	s, c := newFakeClient(t, notionfake.Options{})
	p := s.SeedConnection("ws")
	s.RotateThenDropNext(1)
	_, err := c.Refresh(context.Background(), p.RefreshToken)
	pe := providerError(t, err, tokens.KindOutcomeUnknown)
	if pe.StatusCode != 0 || pe.Err == nil {
		t.Fatalf("error %+v", pe)
	}
	if s.RefreshGrantsFor("ws") != 1 {
		t.Fatal("the fake did not rotate")
	}
	// The retry the Source makes with the same token then meets invalid_grant.
	_, err = c.Refresh(context.Background(), p.RefreshToken)
	providerError(t, err, tokens.KindInvalidGrant)
}

func TestRefreshConnectionRefusedIsNotProcessed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c, err := New(Config{ClientID: "cid", ClientSecret: clientSecret, BaseURL: "http://" + addr,
		HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Refresh(context.Background(), "nrt_whatever0123456789")
	pe := providerError(t, err, tokens.KindNotProcessed)
	var op *net.OpError
	if pe.StatusCode != 0 || !errors.As(err, &op) || op.Op != "dial" {
		t.Fatalf("error %+v", pe)
	}
}

func TestRefreshDeadlineDuringDialIsNotProcessed(t *testing.T) {
	dialing := make(chan struct{})
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		close(dialing)
		<-ctx.Done()
		return nil, ctx.Err()
	}}
	defer tr.CloseIdleConnections()
	c, err := New(Config{ClientID: "cid", ClientSecret: clientSecret, BaseURL: "http://notion.invalid",
		HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-dialing; cancel() }()
	_, err = c.Refresh(ctx, "nrt_whatever0123456789")
	pe := providerError(t, err, tokens.KindNotProcessed)
	if !errors.Is(pe, context.Canceled) {
		t.Fatalf("error %v does not wrap context.Canceled", err)
	}
}

func TestRefreshCanceledContextIsNotProcessed(t *testing.T) {
	s, c := newFakeClient(t, notionfake.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.Refresh(ctx, s.SeedConnection("").RefreshToken)
	providerError(t, err, tokens.KindNotProcessed)
	if s.Stats().TokenRequests != 0 {
		t.Fatal("a request was sent with a canceled context")
	}
}

func TestRefreshDeadlineAfterSendIsOutcomeUnknown(t *testing.T) {
	t.Run("rotated, response late", func(t *testing.T) {
		s, c := newFakeClient(t, notionfake.Options{})
		p := s.SeedConnection("ws")
		// Parked after rotating until the fake is closed: the deadline hits
		// while the request is in flight. (The deadline only has to outlast
		// a localhost connection setup.)
		s.BlockRefreshWith(notionfake.GateOptions{RotateBeforeBlock: true})
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		_, err := c.Refresh(ctx, p.RefreshToken)
		pe := providerError(t, err, tokens.KindOutcomeUnknown)
		if !errors.Is(pe, context.DeadlineExceeded) {
			t.Fatalf("error %v does not wrap DeadlineExceeded", err)
		}
		if s.RefreshGrantsFor("ws") != 1 {
			t.Fatal("the fake did not rotate")
		}
	})
	t.Run("parked before the decision", func(t *testing.T) {
		// The request was written: even though this fake had not decided,
		// the client cannot know that.
		s, c := newFakeClient(t, notionfake.Options{})
		p := s.SeedConnection("ws")
		g := s.BlockRefresh()
		ctx, cancel := context.WithCancel(context.Background())
		go func() { <-g.Arrived(); cancel() }()
		_, err := c.Refresh(ctx, p.RefreshToken)
		providerError(t, err, tokens.KindOutcomeUnknown)
		g.Abort()
	})
}

func TestRefreshWithoutDeadlineGetsDefaultTimeout(t *testing.T) {
	s, ts := notionfake.NewTest(t, notionfake.Options{})
	c, err := New(Config{ClientID: s.ClientID(), ClientSecret: s.ClientSecret(), BaseURL: ts.URL,
		HTTPClient: ts.Client(), DefaultTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	s.SetLatency(time.Hour)
	_, err = c.Refresh(context.Background(), s.SeedConnection("").RefreshToken)
	if pe := providerError(t, err, tokens.KindOutcomeUnknown); !errors.Is(pe, context.DeadlineExceeded) {
		t.Fatalf("error %v", err)
	}
}

func TestExchange(t *testing.T) {
	s, c := newFakeClient(t, notionfake.Options{})
	code := s.IssueCode(callback)

	_, err := c.Exchange(context.Background(), code, callback+"/other")
	providerError(t, err, tokens.KindInvalidGrant)

	ex, err := c.Exchange(context.Background(), code, callback)
	if err != nil {
		t.Fatal(err)
	}
	if ex.AccessToken == "" || ex.RefreshToken == "" || ex.WorkspaceID == "" || ex.BotID == "" ||
		ex.WorkspaceName == "" || ex.WorkspaceIcon == "" || ex.DuplicatedTemplateID != "" {
		t.Fatalf("exchange %+v", ex)
	}
	var owner struct{ Type string }
	if err := json.Unmarshal(ex.Owner, &owner); err != nil || owner.Type != "user" {
		t.Fatalf("owner %s: %v", ex.Owner, err)
	}
	if ws, err := s.CheckAccessToken(ex.AccessToken); err != nil || ws != ex.WorkspaceID {
		t.Fatalf("CheckAccessToken: %q %v", ws, err)
	}
	_, err = c.Exchange(context.Background(), code, callback)
	providerError(t, err, tokens.KindInvalidGrant)
}

func TestAuthorizeURLAgainstFake(t *testing.T) {
	s, ts := notionfake.NewTest(t, notionfake.Options{})
	c, err := New(Config{ClientID: s.ClientID(), ClientSecret: s.ClientSecret(), BaseURL: ts.URL + "/",
		HTTPClient: ts.Client()})
	if err != nil {
		t.Fatal(err)
	}
	au := c.AuthorizeURL(callback+"?a=1&b=2", "state with spaces&more")
	want := ts.URL + "/v1/oauth/authorize?client_id=" + url.QueryEscape(s.ClientID()) +
		"&response_type=code&owner=user&redirect_uri=" + url.QueryEscape(callback+"?a=1&b=2") +
		"&state=" + url.QueryEscape("state with spaces&more")
	if au != want {
		t.Fatalf("AuthorizeURL\n got %s\nwant %s", au, want)
	}

	hc := ts.Client()
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := hc.Get(au)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize: %d %v", resp.StatusCode, err)
	}
	if loc.Query().Get("state") != "state with spaces&more" {
		t.Fatalf("state came back as %q", loc.Query().Get("state"))
	}
	if _, err := c.Exchange(context.Background(), loc.Query().Get("code"), callback+"?a=1&b=2"); err != nil {
		t.Fatalf("exchange of the authorize code: %v", err)
	}
}

func TestRevokeAndIntrospect(t *testing.T) {
	s, c := newFakeClient(t, notionfake.Options{})
	p := s.SeedConnection("ws")
	ctx := context.Background()
	if active, err := c.Introspect(ctx, p.AccessToken); err != nil || !active {
		t.Fatalf("introspect live token: %v %v", active, err)
	}
	if err := c.Revoke(ctx, p.RefreshToken); err != nil {
		t.Fatal(err)
	}
	if active, err := c.Introspect(ctx, p.AccessToken); err != nil || active {
		t.Fatalf("introspect revoked token: %v %v", active, err)
	}
	_, err := c.Refresh(ctx, p.RefreshToken)
	providerError(t, err, tokens.KindInvalidGrant)
}

func TestRevokeAndIntrospectErrors(t *testing.T) {
	ctx := context.Background()
	c := newHandClient(t, reply(503, `{"object":"error","status":503,"code":"service_unavailable","message":"m"}`))
	providerError(t, c.Revoke(ctx, sentToken), tokens.KindOutcomeUnknown)
	_, err := c.Introspect(ctx, sentToken)
	providerError(t, err, tokens.KindOutcomeUnknown)

	c = newHandClient(t, reply(401, `{"error":"invalid_client"}`))
	providerError(t, c.Revoke(ctx, sentToken), tokens.KindInvalidClient)
	_, err = c.Introspect(ctx, sentToken)
	providerError(t, err, tokens.KindInvalidClient)

	for _, body := range []string{`{}`, `{"active":"yes"}`, `<html>`} {
		c = newHandClient(t, reply(200, body))
		if err := c.Revoke(ctx, sentToken); err != nil {
			t.Fatalf("revoke answered 200 %s: %v", body, err)
		}
		_, err = c.Introspect(ctx, sentToken)
		providerError(t, err, tokens.KindOutcomeUnknown)
	}
}

func TestEmptyInputsAreRejectedWithoutARequest(t *testing.T) {
	s, c := newFakeClient(t, notionfake.Options{})
	ctx := context.Background()
	_, err := c.Refresh(ctx, "")
	providerError(t, err, tokens.KindPermanent)
	_, err = c.Exchange(ctx, "", callback)
	providerError(t, err, tokens.KindPermanent)
	providerError(t, c.Revoke(ctx, ""), tokens.KindPermanent)
	_, err = c.Introspect(ctx, "")
	providerError(t, err, tokens.KindPermanent)
	if n := s.Stats().TokenRequests; n != 0 {
		t.Fatalf("%d requests sent", n)
	}
}

func TestNewValidates(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no client id":     {ClientSecret: "s"},
		"no client secret": {ClientID: "c"},
		"relative base":    {ClientID: "c", ClientSecret: "s", BaseURL: "api.notion.com"},
		"ftp base":         {ClientID: "c", ClientSecret: "s", BaseURL: "ftp://api.notion.com"},
		"query in base":    {ClientID: "c", ClientSecret: "s", BaseURL: "https://api.notion.com?x=1"},
		"userinfo in base": {ClientID: "c", ClientSecret: "s", BaseURL: "https://u:hunter2@api.notion.com"},
		"negative timeout": {ClientID: "c", ClientSecret: "s", DefaultTimeout: -time.Second},
	} {
		_, err := New(cfg)
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: error %q holds the password", name, err)
		}
	}
	c, err := New(Config{ClientID: "c", ClientSecret: "s"})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.AuthorizeURL("https://x", "s"); !strings.HasPrefix(got, DefaultBaseURL+"/v1/oauth/authorize?") {
		t.Fatalf("default base: %s", got)
	}
}
