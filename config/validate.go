package config

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Variable names used in validation messages. A test checks each against
// Reference, so they cannot drift from the struct tags.
const (
	varTokenKeys           = Prefix + "TOKEN_KEYS"
	varAccessTokenLifetime = Prefix + "ACCESS_TOKEN_LIFETIME"
	varRefreshMargin       = Prefix + "REFRESH_MARGIN"
	varRefreshJitter       = Prefix + "REFRESH_JITTER"
	varTokenCallTimeout    = Prefix + "TOKEN_CALL_TIMEOUT"
	varRefreshLockTTL      = Prefix + "REFRESH_LOCK_TTL"

	varNotionClientID    = Prefix + "NOTION_CLIENT_ID"
	varNotionRedirectURI = Prefix + "NOTION_REDIRECT_URI"
	varNotionAPIURL      = Prefix + "NOTION_API_URL"
	varNotionVersion     = Prefix + "NOTION_VERSION"
	varNotionRateLimit   = Prefix + "NOTION_RATE_LIMIT"
	varNotionRateBurst   = Prefix + "NOTION_RATE_BURST"

	varSinkURL           = Prefix + "SINK_URL"
	varSyncInterval      = Prefix + "SYNC_INTERVAL"
	varReconcileInterval = Prefix + "RECONCILE_INTERVAL"
	varUsersInterval     = Prefix + "USERS_INTERVAL"
	varSyncOverlap       = Prefix + "SYNC_OVERLAP"
	varMaxBlockDepth     = Prefix + "MAX_BLOCK_DEPTH"
	varMaxObjBlocks      = Prefix + "MAX_OBJECT_BLOCKS"
	varMaxObjReqs        = Prefix + "MAX_OBJECT_REQUESTS"
	varMaxObjBytes       = Prefix + "MAX_OBJECT_BYTES"
	varDrainSlice        = Prefix + "SYNC_DRAIN_SLICE"
	varPagesInFlight     = Prefix + "SYNC_PAGES_IN_FLIGHT"
	varClaimTTL          = Prefix + "SYNC_CLAIM_TTL"

	varLogLevel  = Prefix + "LOG_LEVEL"
	varLogFormat = Prefix + "LOG_FORMAT"

	varWorkerConcurrency = Prefix + "WORKER_CONCURRENCY"
	varWorkerQueues      = Prefix + "WORKER_QUEUES"
	varShutdownTimeout   = Prefix + "SHUTDOWN_TIMEOUT"
	varPollInterval      = Prefix + "WORKER_POLL_INTERVAL"
	varDelayedCheck      = Prefix + "WORKER_DELAYED_CHECK_INTERVAL"
	varJanitorInterval   = Prefix + "WORKER_JANITOR_INTERVAL"
	varHTTPAddr          = Prefix + "HTTP_ADDR"

	varSchedulerTick = Prefix + "SCHEDULER_TICK"
	varLeaderLease   = Prefix + "LEADER_LEASE"
	varControlAddr   = Prefix + "CONTROL_ADDR"
	varMetricsAddr   = Prefix + "METRICS_ADDR"
	varAdminToken    = Prefix + "ADMIN_TOKEN"
	varPublicURL     = Prefix + "PUBLIC_URL"
	varWebhookURL    = Prefix + "WEBHOOK_URL"
	varWebhookSecret = Prefix + "WEBHOOK_SECRET"

	varTrustedProxies   = Prefix + "CONTROL_TRUSTED_PROXIES"
	varReconnectLinkTTL = Prefix + "RECONNECT_LINK_TTL"
	varOAuthMaxStates   = Prefix + "OAUTH_MAX_STATES"
)

// maxReconnectLinkTTL matches control.MaxLinkTTL.
const maxReconnectLinkTTL = 30 * 24 * time.Hour

// maxBlockDepth is the deepest MAX_BLOCK_DEPTH; the same as
// jobs.MaxBlockDepthLimit (config does not import the packages it
// configures).
const maxBlockDepth = 100

// minObjectBytes is the smallest MAX_OBJECT_BYTES: one listing of 100
// ordinary blocks fits many times.
const minObjectBytes = 1 << 20

// minSecretLen is the shortest admin token or webhook secret accepted.
const minSecretLen = 16

// minSyncOverlap is the shortest sync overlap: Notion rounds
// last_edited_time down to the minute.
const minSyncOverlap = time.Minute

// Sink kinds returned by Sync.SinkKind.
const (
	SinkFile     = "file"
	SinkPostgres = "postgres"
)

func (w *Worker) validate(c *collector) {
	w.Redis.validate(c)
	w.Tokens.validate(c)
	w.Notion.validate(c)
	w.Sync.validate(c)
	w.Log.validate(c)
	w.Pool.validate(c)
	w.Files.validate(c)
	if c.ok(varShutdownTimeout, varTokenCallTimeout) && w.ShutdownTimeout > 0 && w.CallTimeout > 0 &&
		w.ShutdownTimeout <= w.CallTimeout {
		c.addf(varShutdownTimeout, showDuration(w.ShutdownTimeout),
			"must be more than %s (%s), so a token refresh in flight completes before the worker exits",
			varTokenCallTimeout, showDuration(w.CallTimeout))
	}
}

func (s *Scheduler) validate(c *collector) {
	s.Redis.validate(c)
	s.Tokens.validate(c)
	s.Notion.validate(c)
	s.Sync.validate(c)
	s.Log.validate(c)
	s.Control.validate(c)
}

func (t *Tokens) validate(c *collector) {
	positive(c, varAccessTokenLifetime, t.AccessTokenLifetime)
	positive(c, varRefreshMargin, t.RefreshMargin)
	if t.RefreshJitter < 0 {
		c.add(varRefreshJitter, showDuration(t.RefreshJitter), "must not be negative")
	}
	positive(c, varTokenCallTimeout, t.CallTimeout)
	positive(c, varRefreshLockTTL, t.RefreshLockTTL)
	if c.ok(varRefreshMargin, varAccessTokenLifetime) && t.RefreshMargin > 0 && t.AccessTokenLifetime > 0 &&
		t.RefreshMargin >= t.AccessTokenLifetime {
		c.addf(varRefreshMargin, showDuration(t.RefreshMargin),
			"must be less than %s (%s), or every token is due for refresh as soon as it is issued",
			varAccessTokenLifetime, showDuration(t.AccessTokenLifetime))
	}
	if c.ok(varRefreshLockTTL, varTokenCallTimeout) && t.RefreshLockTTL > 0 && t.CallTimeout > 0 &&
		t.RefreshLockTTL <= 2*t.CallTimeout {
		c.addf(varRefreshLockTTL, showDuration(t.RefreshLockTTL),
			"must be more than twice %s (%s), so the lock outlives the token call",
			varTokenCallTimeout, showDuration(t.CallTimeout))
	}
}

func (n *Notion) validate(c *collector) {
	if n.ClientID != "" && strings.ContainsFunc(n.ClientID, isSpaceOrControl) {
		c.add(varNotionClientID, strconv.Quote(n.ClientID), "must not contain spaces or control characters")
	}
	if n.RedirectURI != "" {
		if msg := checkHTTPURL(n.RedirectURI, true); msg != "" {
			c.add(varNotionRedirectURI, strconv.Quote(n.RedirectURI), msg)
		}
	}
	if msg := checkHTTPURL(n.APIURL, false); msg != "" {
		c.add(varNotionAPIURL, strconv.Quote(n.APIURL), msg)
	} else {
		n.APIURL = strings.TrimRight(n.APIURL, "/")
	}
	if _, err := time.Parse(time.DateOnly, n.Version); err != nil {
		c.add(varNotionVersion, strconv.Quote(n.Version), "must be a Notion API version date such as 2022-06-28")
	}
	atLeastOne(c, varNotionRateLimit, n.RateLimit)
	atLeastOne(c, varNotionRateBurst, n.RateBurst)
	if c.ok(varNotionRateBurst, varNotionRateLimit) && n.RateLimit >= 1 && n.RateBurst > n.RateLimit {
		c.addf(varNotionRateBurst, strconv.Itoa(n.RateBurst), "must not be more than %s (%d)", varNotionRateLimit, n.RateLimit)
	}
}

func (s *Sync) validate(c *collector) {
	if s.QueueShards < 1 || s.QueueShards > MaxQueueShards {
		c.addf(varQueueShards, strconv.Itoa(s.QueueShards), "must be from 1 to %d (the number of connection shards; more parts would stay empty)", MaxQueueShards)
	}
	_, _, verr := s.sinkTarget()
	c.addErr(verr)
	positive(c, varSyncInterval, s.Interval)
	if s.UsersInterval < 0 {
		c.addf(varUsersInterval, showDuration(s.UsersInterval), "must not be negative (0 turns user listing off)")
	}
	if s.ReconcileInterval < 0 {
		c.addf(varReconcileInterval, showDuration(s.ReconcileInterval), "must not be negative (0 disables the reconciliation)")
	}
	if s.Overlap < minSyncOverlap {
		c.addf(varSyncOverlap, showDuration(s.Overlap),
			"must be at least %s: Notion rounds last_edited_time down to the minute, so a shorter overlap misses edits",
			showDuration(minSyncOverlap))
	}
	atLeastOne(c, varMaxBlockDepth, s.MaxBlockDepth)
	if s.MaxBlockDepth > maxBlockDepth {
		// The walk refuses more (jobs.MaxBlockDepthLimit): a deeper tree is
		// a runaway one, and the block caps bound it anyway.
		c.addf(varMaxBlockDepth, strconv.Itoa(s.MaxBlockDepth), "must be at most %d", maxBlockDepth)
	}
	atLeastOne(c, varMaxObjBlocks, s.MaxObjectBlocks)
	atLeastOne(c, varMaxObjReqs, s.MaxObjectRequests)
	if s.MaxObjectBytes < minObjectBytes {
		c.addf(varMaxObjBytes, strconv.FormatInt(s.MaxObjectBytes, 10), "must be at least %d (1 MiB)", minObjectBytes)
	}
	if s.PagesInFlight < 1 || s.PagesInFlight > 16 {
		c.addf(varPagesInFlight, strconv.Itoa(s.PagesInFlight), "must be between 1 and 16")
	}
	if s.DrainSlice < time.Second {
		c.addf(varDrainSlice, showDuration(s.DrainSlice), "must be at least 1s")
	}
	if s.ClaimTTL < time.Second || s.ClaimTTL > time.Minute {
		c.addf(varClaimTTL, showDuration(s.ClaimTTL), "must be between 1s and 1m")
	}
}

// SinkKind returns SinkFile or SinkPostgres (for postgres:// and
// postgresql://), or "" when SinkURL is not valid (a loaded configuration
// always has a valid one). For Postgres, pass SinkURL.Value() to pgx.
func (s Sync) SinkKind() string {
	kind, _, verr := s.sinkTarget()
	if verr != nil {
		return ""
	}
	return kind
}

// SinkFilePath returns the directory of a file:// sink: file://./data gives
// ./data, file:///var/lib/notionsync gives /var/lib/notionsync. It fails for
// a Postgres sink or an invalid URL.
func (s Sync) SinkFilePath() (string, error) {
	kind, path, verr := s.sinkTarget()
	if verr != nil {
		return "", verr
	}
	if kind != SinkFile {
		return "", &VarError{Var: varSinkURL, Msg: "not a file:// sink"}
	}
	return path, nil
}

// sinkTarget parses SinkURL.
func (s Sync) sinkTarget() (kind, path string, verr *VarError) {
	u, err := url.Parse(s.SinkURL.Value())
	if err != nil || u.Scheme == "" {
		// url.Parse's error quotes the whole URL, password included.
		return "", "", &VarError{Var: varSinkURL, Msg: "not a valid URL (want file://DIR or postgres://user:password@host:port/db)"}
	}
	shown := s.SinkURL.String()
	switch u.Scheme {
	case "file":
		if u.Opaque != "" || u.RawQuery != "" || u.Fragment != "" {
			return "", "", &VarError{Var: varSinkURL, Value: shown, Msg: "want file://DIR, e.g. file://./data or file:///var/lib/notionsync"}
		}
		switch u.Host {
		case "", "localhost":
			path = u.Path
		case ".", "..":
			path = u.Host + u.Path
		default:
			return "", "", &VarError{Var: varSinkURL, Value: shown,
				Msg: fmt.Sprintf("file URL host %q is not supported: write file://./DIR for a directory relative to the working directory, file:///DIR for an absolute one", u.Host)}
		}
		if path == "" {
			return "", "", &VarError{Var: varSinkURL, Value: shown, Msg: "names no directory (want file://./data or file:///var/lib/notionsync)"}
		}
		return SinkFile, path, nil
	case "postgres", "postgresql":
		if u.Opaque != "" {
			return "", "", &VarError{Var: varSinkURL, Value: shown, Msg: "want postgres://user:password@host:port/db"}
		}
		return SinkPostgres, "", nil
	default:
		return "", "", &VarError{Var: varSinkURL, Value: shown, Msg: fmt.Sprintf("scheme %q is not supported (want file, postgres or postgresql)", u.Scheme)}
	}
}

func (l *Log) validate(c *collector) {
	l.Level = strings.ToLower(strings.TrimSpace(l.Level))
	switch l.Level {
	case "debug", "info", "warn", "error":
	default:
		c.add(varLogLevel, strconv.Quote(l.Level), "must be one of debug, info, warn, error")
	}
	l.Format = strings.ToLower(strings.TrimSpace(l.Format))
	switch l.Format {
	case "json", "console":
	default:
		c.add(varLogFormat, strconv.Quote(l.Format), "must be json or console")
	}
}

func (p *Pool) validate(c *collector) {
	atLeastOne(c, varWorkerConcurrency, p.Concurrency)
	if len(p.Queues) == 0 {
		c.add(varWorkerQueues, "", "no queues: want name=weight[,name=weight...]")
	}
	positive(c, varShutdownTimeout, p.ShutdownTimeout)
	between(c, varPollInterval, p.PollInterval, 100*time.Millisecond, time.Minute)
	between(c, varDelayedCheck, p.DelayedCheckInterval, time.Second, time.Minute)
	between(c, varJanitorInterval, p.JanitorInterval, time.Second, time.Hour)
	if msg := checkListenAddr(p.HTTPAddr); msg != "" {
		c.add(varHTTPAddr, strconv.Quote(p.HTTPAddr), msg)
	}
}

func (ctl *Control) validate(c *collector) {
	positive(c, varSchedulerTick, ctl.Tick)
	positive(c, varLeaderLease, ctl.LeaderLease)
	if c.ok(varLeaderLease, varSchedulerTick) && ctl.Tick > 0 && ctl.LeaderLease > 0 && ctl.LeaderLease <= 2*ctl.Tick {
		c.addf(varLeaderLease, showDuration(ctl.LeaderLease),
			"must be more than twice %s (%s), so one late renewal does not lose the lease",
			varSchedulerTick, showDuration(ctl.Tick))
	}
	if msg := checkListenAddr(ctl.ControlAddr); msg != "" {
		c.add(varControlAddr, strconv.Quote(ctl.ControlAddr), msg)
	}
	if msg := checkListenAddr(ctl.MetricsAddr); msg != "" {
		c.add(varMetricsAddr, strconv.Quote(ctl.MetricsAddr), msg)
	} else if c.ok(varControlAddr) && sameListener(ctl.MetricsAddr, ctl.ControlAddr) {
		c.add(varMetricsAddr, strconv.Quote(ctl.MetricsAddr), "must differ from "+varControlAddr+" (metrics stay off the browser-facing listener)")
	}
	if ctl.AdminToken.IsSet() && len(ctl.AdminToken.Value()) < minSecretLen {
		c.addf(varAdminToken, "", "must be at least %d characters", minSecretLen)
	}
	if ctl.PublicURL != "" {
		if msg := checkHTTPURL(ctl.PublicURL, false); msg != "" {
			c.add(varPublicURL, strconv.Quote(ctl.PublicURL), msg)
		} else {
			ctl.PublicURL = strings.TrimRight(ctl.PublicURL, "/")
		}
	}
	if ctl.WebhookURL.IsSet() {
		if msg := checkHTTPURL(ctl.WebhookURL.Value(), true); msg != "" {
			c.add(varWebhookURL, "", msg)
		}
	}
	if _, err := ctl.TrustedProxyPrefixes(); err != nil {
		c.add(varTrustedProxies, strconv.Quote(strings.Join(ctl.TrustedProxies, ",")), err.Error())
	}
	positive(c, varReconnectLinkTTL, ctl.ReconnectLinkTTL)
	if ctl.ReconnectLinkTTL > maxReconnectLinkTTL {
		c.add(varReconnectLinkTTL, showDuration(ctl.ReconnectLinkTTL), "must be at most 720h (30 days)")
	}
	atLeastOne(c, varOAuthMaxStates, ctl.OAuthMaxStates)
	switch {
	case ctl.WebhookURL.IsSet() && !ctl.WebhookSecret.IsSet():
		c.add(varWebhookSecret, "", "required with "+varWebhookURL+" (outbound webhooks are signed with it)")
	case !ctl.WebhookURL.IsSet() && ctl.WebhookSecret.IsSet():
		c.add(varWebhookSecret, "", "set, but "+varWebhookURL+" is not: no webhook would be sent")
	case ctl.WebhookSecret.IsSet() && len(ctl.WebhookSecret.Value()) < minSecretLen:
		c.addf(varWebhookSecret, "", "must be at least %d characters", minSecretLen)
	}
}

// positive checks that a duration is more than zero.
func positive(c *collector, name string, d time.Duration) {
	if d <= 0 {
		c.add(name, showDuration(d), "must be more than 0")
	}
}

// between checks that a duration is within [lo, hi].
func between(c *collector, name string, d, lo, hi time.Duration) {
	if d < lo || d > hi {
		c.addf(name, showDuration(d), "must be between %s and %s", showDuration(lo), showDuration(hi))
	}
}

// atLeastOne checks that a count is at least 1.
func atLeastOne(c *collector, name string, n int) {
	if n < 1 {
		c.add(name, strconv.Itoa(n), "must be at least 1")
	}
}

// checkHTTPURL returns what is wrong with raw as an absolute http(s) URL, or
// "". It never repeats raw (a caller shows it when it is not secret).
func checkHTTPURL(raw string, allowQuery bool) string {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return "not a valid URL"
	case u.Scheme != "http" && u.Scheme != "https", u.Host == "", u.Opaque != "":
		return "must be an absolute http:// or https:// URL"
	case strings.Contains(raw, "#"):
		return "must not have a #fragment"
	case !allowQuery && (u.RawQuery != "" || u.ForceQuery):
		return "must not have a ?query"
	}
	return ""
}

// checkListenAddr returns what is wrong with addr as a listen address, or "".
func checkListenAddr(addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "want host:port or :port"
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return "port must be a number from 0 to 65535"
	}
	return ""
}

// sameListener reports whether two valid listen addresses would take the
// same port on a shared interface (":9090" and "127.0.0.1:9090" collide).
func sameListener(a, b string) bool {
	ha, pa, _ := net.SplitHostPort(a)
	hb, pb, _ := net.SplitHostPort(b)
	if pa != pb || pa == "0" {
		return false
	}
	wild := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	return ha == hb || wild(ha) || wild(hb)
}

func isSpaceOrControl(r rune) bool { return r <= ' ' || r == 0x7f }

// TrustedProxyPrefixes parses TrustedProxies: CIDRs, or single addresses
// (as /32 or /128).
func (ctl *Control) TrustedProxyPrefixes() ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(ctl.TrustedProxies))
	for i, v := range ctl.TrustedProxies {
		v = strings.TrimSpace(v)
		if p, err := netip.ParsePrefix(v); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(v)
		if err != nil || a.Zone() != "" {
			return nil, fmt.Errorf("entry %d %q: want a CIDR like 10.0.0.0/8 or an address", i+1, v)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

func (f *Files) validate(c *collector) {
	if f.MaxBytes < 1 {
		c.add(Prefix+"FILE_MAX_BYTES", strconv.FormatInt(f.MaxBytes, 10), "must be at least 1")
	}
	if f.QuotaBytes < 1 {
		c.add(Prefix+"FILE_QUOTA_BYTES", strconv.FormatInt(f.QuotaBytes, 10), "must be at least 1")
	}
	if f.DownloadConcurrency < 1 || f.DownloadConcurrency > 256 {
		c.add(Prefix+"FILE_CONCURRENCY", strconv.Itoa(f.DownloadConcurrency), "must be 1 to 256")
	}
	for _, h := range f.Hosts {
		if h == "" || h == "." || strings.ContainsAny(h, "/?#@ ") {
			c.add(Prefix+"FILE_HOSTS", strconv.Quote(strings.Join(f.Hosts, ",")), "each entry must be host, host:port or .domain")
			break
		}
	}
}
