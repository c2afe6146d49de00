// Package files downloads the Notion-hosted files a synced object
// references (file, image, pdf, video and audio blocks, page icons and
// covers, files property values) into a sink's record.FileStore, so that
// the mirror keeps them after Notion's signed URLs expire (an hour after
// the request that returned them).
//
// PageRefs finds a page's references, SchemaRefs a database's or data
// source's (icon, cover); Downloader.Download streams one into the store
// (never whole in memory), content-addressed by sha-256, under a per-file
// size cap and a per-connection quota, with its own concurrency bound. The
// quota is a Quota: RedisQuota keeps one counter per connection in Redis
// that every worker reserves from before a download and settles after, so
// the workers together never pass it. Downloads are not Notion API requests: they do not go through the
// Notion client or its rate limiter. External files (type "external") are
// links the user pasted and stay links: they are never fetched.
//
// # What the downloader connects to (SSRF)
//
// A file URL comes from Notion's answer, so a compromised or spoofed answer
// could point the worker at an internal service. The downloader therefore:
//
//   - fetches only https URLs (http only with Config.AllowHTTP, for the
//     sandbox) whose host is in Config.AllowedHosts (default
//     DefaultAllowedHosts: the S3 buckets and the domains Notion serves its
//     files from);
//   - follows at most 3 redirects, each to an allowed host and scheme;
//   - refuses to connect to loopback, private, link-local, unspecified
//     and multicast addresses, checked on the address actually dialled (so
//     a DNS answer cannot rebind an allowed name to an internal address),
//     unless Config.AllowPrivateAddresses (the sandbox listens on
//     127.0.0.1);
//   - sends no credentials: no Notion token, no cookies.
package files
