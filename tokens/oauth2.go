package tokens

import (
	"context"

	"golang.org/x/oauth2"
)

// OAuth2 returns a golang.org/x/oauth2 TokenSource for one connection, so any
// code built on that library (oauth2.NewClient, API clients taking a
// TokenSource) gets cross-process coordinated refresh with persisted
// rotations, which the library itself does not offer (golang/oauth2#84).
//
// oauth2.TokenSource has no context parameter, so ctx is used for every call:
// give it one that lives as long as the TokenSource (cancelling it makes
// Token fail; a refresh already under way still completes and is stored).
// Do not wrap the result in oauth2.ReuseTokenSource: the Source already
// caches, and ReuseTokenSource would keep serving a token after another
// process refreshed it.
func (s *Source) OAuth2(ctx context.Context, connID string) oauth2.TokenSource {
	return oauth2Source{ctx: ctx, s: s, id: connID}
}

type oauth2Source struct {
	ctx context.Context
	s   *Source
	id  string
}

func (o oauth2Source) Token() (*oauth2.Token, error) {
	t, err := o.s.Token(o.ctx, o.id)
	if err != nil {
		return nil, err
	}
	return &oauth2.Token{AccessToken: t.AccessToken, TokenType: "Bearer", Expiry: t.Expiry}, nil
}
