// Package notionauth is notionsync's client for Notion's OAuth endpoints:
// the refresh grant (Client.Refresh, the tokens.Provider the token Source
// uses), the authorization-code exchange (Exchange), revocation (Revoke),
// introspection (Introspect) and the authorize URL (AuthorizeURL).
// github.com/jomei/notionapi has no refresh grant, hence this package.
//
// # Errors
//
// Every failure is a *tokens.ProviderError whose Kind tells the Source what
// may have happened at Notion:
//
//   - invalid_grant (400, in OAuth or Notion error shape): KindInvalidGrant.
//   - invalid_client, or any 401: KindInvalidClient.
//   - 429 (RetryAfter from Retry-After, seconds or HTTP-date) and 408:
//     KindNotProcessed; so are transport failures that certainly sent
//     nothing (connection refused, DNS failure, no connection obtained
//     before the deadline).
//   - 5xx, timeouts and resets after a connection was obtained, and a 2xx
//     that is unreadable, not JSON or lacks access_token: KindOutcomeUnknown,
//     because Notion may have rotated the token.
//   - any other 4xx or a redirect: KindPermanent. Bodies that are not JSON
//     (a Cloudflare HTML 403) are classified by status.
//
// Error text never holds a token, a code or the client secret: provider
// messages have the sent token, the client secret and anything token-shaped
// replaced by [redacted], and request bodies are never included. Response
// bodies are read up to 1 MiB.
//
// # Concurrency and retries
//
// A Client is safe for concurrent use. It sends exactly one request per call
// and never retries: whether a retry may spend a token twice is the caller's
// decision. Deadlines come from the context (DefaultTimeout applies when it
// has none); redirects are never followed.
package notionauth
