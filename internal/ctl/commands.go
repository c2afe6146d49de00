package ctl

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/notionsync/notionsync/internal/control"
	"github.com/notionsync/notionsync/tokens"
)

// runFunc runs a command with its positional arguments.
type runFunc func(ctx context.Context, r *runner, args []string) error

// command is one subcommand: setup defines its flags on fs and returns the
// function that runs it once they are parsed.
type command struct {
	name     string
	synopsis string // arguments, as in "ID [-wait]"
	summary  string // one line for the command list
	help     string // a paragraph for "help <command>"
	setup    func(fs *flag.FlagSet) runFunc
}

// commandTable lists the commands in the order usage shows them.
func commandTable() []*command {
	return []*command{
		{name: "list", synopsis: "[-status S] [-limit N]", summary: "list connections",
			help: "Lists connections, oldest first: status, the reason of needs_reauth, when the access\n" +
				"token expires (\"-\" once needs_reauth or disconnected: that token is dead), the last\n" +
				"sync, the objects pending, the per-object errors of the sync state (objects that\n" +
				"failed on their own; 'show ID' names them) and consecutive refresh failures.\n" +
				"-status filters on the client: the whole list is paged through.",
			setup: setupList},
		{name: "show", synopsis: "ID", summary: "show one connection with its meta and sync state",
			help: "Shows one connection as key: value lines, with its meta and sync state.", setup: setupShow},
		{name: "events", synopsis: "ID", summary: "show a connection's token timeline, newest first",
			help: "Shows the connection's token timeline (connected, refreshed, refresh failures,\n" +
				"needs_reauth with its reason, pauses ...), newest first.", setup: setupEvents},
		{name: "pause", synopsis: "ID", summary: "stop syncing an active connection",
			help: "Pauses an active connection: no syncs run; its tokens are still refreshed. Pausing\n" +
				"a paused connection changes nothing and exits 0 with a note on stderr.",
			setup: setupTransition("pause", "paused")},
		{name: "resume", synopsis: "ID", summary: "resume a paused connection",
			help: "Resumes a paused connection. Resuming an active connection changes nothing and\n" +
				"exits 0 with a note on stderr.", setup: setupTransition("resume", "resumed")},
		{name: "sync", synopsis: "ID", summary: "enqueue a sync of an active connection now",
			help: "Enqueues a sweep of an active connection now.", setup: setupSync},
		{name: "reconcile", synopsis: "ID", summary: "enqueue a reconciliation pass of an active connection now",
			help: "Enqueues a reconciliation pass of an active connection now, besides its daily one: a\n" +
				"full listing compared with the sink, pages search missed fetched, objects Notion\n" +
				"confirms trashed or unshared stored as tombstones. Its counts show in `show ID`\n" +
				"(sync.reconcile) when it ends.", setup: setupReconcile},
		{name: "refresh", synopsis: "ID [-wait]", summary: "enqueue a token refresh (-wait: refresh now)",
			help: "Enqueues a refresh of the connection's tokens: a worker refreshes them even if the\n" +
				"refresh is not due (unless another refresh lands first). With -wait, refreshes them\n" +
				"now and reports the new expiry.", setup: setupRefresh},
		{name: "disconnect", synopsis: "ID [-yes]", summary: "revoke the grant at Notion and delete the tokens",
			help: "Revokes the connection's grant at Notion (best effort) and deletes its tokens. The\n" +
				"workspace must then be connected again. Asks for confirmation on a terminal; without\n" +
				"one (scripts), -yes is required.", setup: setupDisconnect},
		{name: "import", synopsis: "-id ID [-file F] [-replace] [-meta k=v]...",
			summary: "store a token pair obtained elsewhere (JSON on stdin)",
			help: "Stores a token pair obtained elsewhere under connection ID, read as JSON from stdin\n" +
				"or -file: {\"access_token\": \"...\", \"refresh_token\": \"...\", \"expires_in\": 3600}.\n" +
				"expires_in (seconds) is optional. workspace_id, workspace_name and bot_id, as in\n" +
				"Notion's token response, are kept as meta. Tokens are never accepted as flags:\n" +
				"command lines are visible to every user of the machine.", setup: setupImport},
		{name: "rekey", synopsis: "", summary: "re-seal every connection's tokens with the primary key",
			help: "After a new first key was added to NOTIONSYNC_TOKEN_KEYS (and every process\n" +
				"restarted), re-seals every connection's tokens with it, page by page, without\n" +
				"moving any version (safe while refreshes run). When it reports no failures, the\n" +
				"old key can be removed.", setup: setupRekey},
		{name: "connect-url", synopsis: "[-id ID] [-base URL]", summary: "print the link that connects a workspace",
			help: "Prints the link a user opens to connect a Notion workspace; with -id, a signed\n" +
				"reconnect link for that existing connection (as reconnect-link ID). The link is built\n" +
				"on -base, by default the server's public URL or -server: browsers must reach it on\n" +
				"the same host as the OAuth redirect URI.", setup: setupConnectURL},
		{name: "reconnect-link", synopsis: "ID [-ttl D]", summary: "mint a signed link that re-authorizes a connection",
			help: "Mints a reconnect link for an existing connection: signed, valid for -ttl (default:\n" +
				"the server's, 7 days; at most 30 days) and spent by its first successful use (or any\n" +
				"other reconnect or import). It binds only the workspace the connection belongs to; a\n" +
				"connection imported without workspace_id gets none until its first token refresh.\n" +
				"The link is a credential: send it only to the connection's owner.", setup: setupReconnectLink},
		{name: "redis", synopsis: "migrate-keys [-dry-run] [-lock-wait D]",
			summary: "move Redis data to the sharded key layout (talks to Redis, not the API)",
			help:    redisHelp, setup: setupRedis},
	}
}

// commands is the command table; it is never modified.
var commands = commandTable()

func lookup(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

// connection is a connection as the API returns it, with its sync state
// kept raw (its shape is whatever the server's SyncInfo returns).
type connection struct {
	control.ConnectionView
	Sync json.RawMessage `json:"sync,omitempty"`
}

// oneID checks that args is exactly one valid connection id.
func oneID(cmd string, args []string) (string, error) {
	switch len(args) {
	case 0:
		return "", usagef(cmd, "a connection id is required")
	case 1:
		return args[0], checkID(cmd, args[0])
	default:
		return "", usagef(cmd, "one connection id expected, got %d arguments", len(args))
	}
}

func checkID(cmd, id string) error {
	if tokens.ValidateID(id) != nil {
		return usagef(cmd, "invalid connection id %s: ids are %s", clean(strconv.Quote(id)), tokens.IDRule)
	}
	return nil
}

func connPath(id string, suffix string) string {
	return "/connections/" + url.PathEscape(id) + suffix
}

var statuses = []tokens.Status{tokens.StatusActive, tokens.StatusPaused, tokens.StatusNeedsReauth, tokens.StatusDisconnected}

// listPageSize is how many connections one list request asks for.
const listPageSize = 500

func setupList(fs *flag.FlagSet) runFunc {
	status := fs.String("status", "", "show only connections with this `status`: active, paused, needs_reauth or disconnected")
	limit := fs.Int("limit", 0, "show at most `N` connections (0: all)")
	return func(ctx context.Context, r *runner, args []string) error {
		if len(args) != 0 {
			return usagef(r.cmd, "list takes no arguments")
		}
		if *status != "" && !slices.Contains(statuses, tokens.Status(*status)) {
			return usagef(r.cmd, "-status must be one of active, paused, needs_reauth, disconnected")
		}
		if *limit < 0 {
			return usagef(r.cmd, "-limit must not be negative")
		}
		ctx, cancel := r.withTimeout(ctx, DefaultTimeout)
		defer cancel()

		pageSize := listPageSize
		if *limit > 0 && *status == "" {
			pageSize = min(*limit, listPageSize)
		}
		var raws []json.RawMessage
		var conns []connection
		after := ""
	pages:
		for {
			q := url.Values{"limit": {strconv.Itoa(pageSize)}}
			if after != "" {
				q.Set("after", after)
			}
			var page struct {
				Connections []json.RawMessage `json:"connections"`
				Next        string            `json:"next"`
			}
			if _, err := r.getJSON(ctx, http.MethodGet, "/connections", q, nil, &page); err != nil {
				return err
			}
			for _, raw := range page.Connections {
				var c connection
				if err := json.Unmarshal(raw, &c); err != nil {
					return fmt.Errorf("the control server at %s listed a connection that is not the expected JSON: %v", r.server(), err)
				}
				if *status != "" && string(c.Status) != *status {
					continue
				}
				raws, conns = append(raws, raw), append(conns, c)
				if *limit > 0 && len(conns) == *limit {
					break pages
				}
			}
			if page.Next == "" {
				break
			}
			if page.Next == after {
				return fmt.Errorf("the control server at %s returned the same page twice (after=%s)", r.server(), clean(after))
			}
			after = page.Next
		}

		if r.jsonOutput() {
			return r.printValue(struct {
				Connections []json.RawMessage `json:"connections"`
			}{Connections: append([]json.RawMessage{}, raws...)})
		}
		if len(conns) == 0 {
			if *status != "" {
				r.errf("no connections with status %s\n", *status)
			} else {
				r.errf("no connections\n")
			}
			return nil
		}
		now := r.env.Now()
		t := newTable(r.env.Stdout, "ID", "STATUS", "REASON", "ACCESS EXPIRES", "LAST SYNC", "PENDING", "ERRORS", "FAILURES")
		for _, c := range conns {
			lastSync, pending, objErrors := "-", "-", "-"
			if s := parseSync(c.Sync); s != nil {
				if ts, ok := s.time("last_sync"); ok {
					lastSync = "never"
					if !ts.IsZero() {
						lastSync = relative(ts, now)
					}
				}
				if n, ok := s.int("pending"); ok {
					pending = strconv.FormatInt(n, 10)
				}
				// A connection stuck on poisoned pages shows a pending count
				// that never drains; the count of its per-object errors
				// says why. jobs.SyncState omits an empty map.
				objErrors = strconv.Itoa(s.count("errors"))
			}
			// The access token of a needs_reauth or disconnected connection
			// is dead whatever its expiry says; a countdown would suggest
			// it still works.
			expires := relative(c.AccessExpiresAt, now)
			if c.Status == tokens.StatusNeedsReauth || c.Status == tokens.StatusDisconnected {
				expires = "-"
			}
			t.row(cell(c.ID), cell(string(c.Status)), cell(string(c.Reason)), expires,
				lastSync, pending, objErrors, strconv.Itoa(c.Failures))
		}
		return t.flush()
	}
}

func setupShow(*flag.FlagSet) runFunc {
	return func(ctx context.Context, r *runner, args []string) error {
		id, err := oneID(r.cmd, args)
		if err != nil {
			return err
		}
		ctx, cancel := r.withTimeout(ctx, DefaultTimeout)
		defer cancel()
		var c connection
		raw, err := r.getJSON(ctx, http.MethodGet, connPath(id, ""), nil, nil, &c)
		if err != nil {
			return err
		}
		if r.jsonOutput() {
			return r.printJSON(raw)
		}
		return writePairs(r.env.Stdout, showPairs(c, r))
	}
}

// showPairs renders a connection as key: value pairs; optional fields only
// when set.
func showPairs(c connection, r *runner) [][2]string {
	now := r.env.Now()
	p := [][2]string{{"id", cell(c.ID)}, {"status", cell(string(c.Status))}}
	add := func(k, v string) {
		if v != "" {
			p = append(p, [2]string{k, clean(v)})
		}
	}
	addTime := func(k string, t time.Time, v string) {
		if !t.IsZero() {
			p = append(p, [2]string{k, v})
		}
	}
	add("reason", string(c.Reason))
	add("detail", c.Detail)
	p = append(p, [2]string{"version", strconv.FormatInt(c.Version, 10)})
	addTime("access_expires", c.AccessExpiresAt, timestamp(c.AccessExpiresAt, now))
	addTime("refresh_due", c.RefreshDueAt, timestamp(c.RefreshDueAt, now))
	addTime("refreshed", c.RefreshedAt, timestamp(c.RefreshedAt, now))
	p = append(p, [2]string{"failures", strconv.Itoa(c.Failures)})
	addTime("retry_at", c.RetryAt, timestamp(c.RetryAt, now))
	rt := "none"
	if c.HasRefreshToken {
		rt = "stored"
	}
	p = append(p, [2]string{"refresh_token", rt})
	add("key_id", c.KeyID)
	addTime("created", c.CreatedAt, timestamp(c.CreatedAt, now))
	addTime("updated", c.UpdatedAt, timestamp(c.UpdatedAt, now))
	add("reconnect_url", c.ReconnectURL)
	for _, k := range slices.Sorted(maps.Keys(c.Meta)) {
		p = append(p, [2]string{"meta." + clean(k), cell(c.Meta[k])})
	}
	if s := parseSync(c.Sync); s != nil {
		p = append(p, s.lines("sync.", now)...)
	} else if len(c.Sync) > 0 && string(c.Sync) != "null" {
		p = append(p, jsonLines("sync", c.Sync, now)...)
	}
	return p
}

func setupEvents(*flag.FlagSet) runFunc {
	return func(ctx context.Context, r *runner, args []string) error {
		id, err := oneID(r.cmd, args)
		if err != nil {
			return err
		}
		ctx, cancel := r.withTimeout(ctx, DefaultTimeout)
		defer cancel()
		var body struct {
			Events []tokens.Event `json:"events"`
		}
		raw, err := r.getJSON(ctx, http.MethodGet, connPath(id, "/events"), nil, nil, &body)
		if err != nil {
			return err
		}
		if r.jsonOutput() {
			return r.printJSON(raw)
		}
		if len(body.Events) == 0 {
			r.errf("no events for %s\n", id)
			return nil
		}
		t := newTable(r.env.Stdout, "TIME", "KIND", "VERSION", "DETAIL")
		for _, e := range body.Events {
			t.row(e.Time.UTC().Format(time.RFC3339), cell(e.Kind), strconv.FormatInt(e.Version, 10), cell(e.Detail))
		}
		return t.flush()
	}
}

// setupTransition is pause and resume: POST .../<action>, which answers
// with the connection.
//
// Both are idempotent for scripts: when the server refuses with
// wrong_status because the connection already is in the target status
// (paused for pause, active for resume), the command notes it on stderr
// and succeeds. Any other status (needs_reauth, disconnected) still fails.
func setupTransition(action, done string) func(*flag.FlagSet) runFunc {
	target := tokens.StatusPaused
	if action == "resume" {
		target = tokens.StatusActive
	}
	return func(*flag.FlagSet) runFunc {
		return func(ctx context.Context, r *runner, args []string) error {
			id, err := oneID(r.cmd, args)
			if err != nil {
				return err
			}
			ctx, cancel := r.withTimeout(ctx, DefaultTimeout)
			defer cancel()
			var c connection
			raw, err := r.getJSON(ctx, http.MethodPost, connPath(id, "/"+action), nil, nil, &c)
			if ae := (*apiError)(nil); errors.As(err, &ae) && ae.Code == "wrong_status" {
				// Re-read rather than parse the message: the status is
				// the API's, the message is for people.
				var cur connection
				curRaw, gerr := r.getJSON(ctx, http.MethodGet, connPath(id, ""), nil, nil, &cur)
				if gerr != nil || cur.Status != target {
					return err
				}
				r.errf("%s: already %s; nothing to do\n", id, target)
				raw, c, err = curRaw, cur, nil
			}
			if err != nil {
				return err
			}
			if r.jsonOutput() {
				return r.printJSON(raw)
			}
			r.outf("%s: %s (status %s)\n", id, done, cell(string(c.Status)))
			return nil
		}
	}
}

func setupReconcile(*flag.FlagSet) runFunc { return enqueueAction("/reconcile", "reconciliation") }

func setupSync(*flag.FlagSet) runFunc { return enqueueAction("/sync", "sync") }

// enqueueAction is a command that POSTs to a connection's action path and
// reports "<id>: <what> enqueued" (or the answer, with -output json).
func enqueueAction(path, what string) runFunc {
	return func(ctx context.Context, r *runner, args []string) error {
		id, err := oneID(r.cmd, args)
		if err != nil {
			return err
		}
		ctx, cancel := r.withTimeout(ctx, DefaultTimeout)
		defer cancel()
		raw, err := r.getJSON(ctx, http.MethodPost, connPath(id, path), nil, nil, nil)
		if err != nil {
			return err
		}
		if r.jsonOutput() {
			return r.printJSON(raw)
		}
		r.outf("%s: %s enqueued\n", id, what)
		return nil
	}
}

func setupRefresh(fs *flag.FlagSet) runFunc {
	wait := fs.Bool("wait", false, "refresh now and wait for Notion's answer, instead of enqueueing")
	return func(ctx context.Context, r *runner, args []string) error {
		id, err := oneID(r.cmd, args)
		if err != nil {
			return err
		}
		def, q := DefaultTimeout, url.Values(nil)
		if *wait {
			def, q = DefaultWaitTimeout, url.Values{"wait": {"1"}}
		}
		ctx, cancel := r.withTimeout(ctx, def)
		defer cancel()
		var c connection
		var out any
		if *wait {
			out = &c
		}
		raw, err := r.getJSON(ctx, http.MethodPost, connPath(id, "/refresh"), q, nil, out)
		if err != nil {
			return err
		}
		if r.jsonOutput() {
			return r.printJSON(raw)
		}
		if !*wait {
			r.outf("%s: refresh enqueued (a worker refreshes the token even if not due; -wait to see the result)\n", id)
			return nil
		}
		r.outf("%s: refreshed (token version %d; access token expires %s)\n", id, c.Version, relative(c.AccessExpiresAt, r.env.Now()))
		return nil
	}
}

func setupDisconnect(fs *flag.FlagSet) runFunc {
	yes := fs.Bool("yes", false, "do not ask for confirmation (required when stdin is not a terminal)")
	return func(ctx context.Context, r *runner, args []string) error {
		id, err := oneID(r.cmd, args)
		if err != nil {
			return err
		}
		if !*yes && !r.env.StdinIsTerminal {
			return usagef(r.cmd, "disconnect revokes the grant and deletes the tokens: pass -yes to confirm (stdin is not a terminal to ask on)")
		}
		if err := r.requireToken(); err != nil {
			return err
		}
		if !*yes {
			cctx, cancel := r.withTimeout(ctx, DefaultTimeout)
			var c connection
			_, err := r.getJSON(cctx, http.MethodGet, connPath(id, ""), nil, nil, &c)
			cancel()
			if err != nil {
				return err
			}
			ws := ""
			if name := c.Meta[control.MetaWorkspaceName]; name != "" {
				ws = ", workspace " + strconv.Quote(name)
			}
			ok, err := r.confirm(ctx, fmt.Sprintf("Disconnect %s (%s%s)? Its grant is revoked at Notion and its tokens are deleted;\n"+
				"the workspace must then be connected again. Type yes to confirm: ", id, cell(string(c.Status)), clean(ws)))
			if err != nil {
				return err
			}
			if !ok {
				return errDeclined
			}
		}
		ctx, cancel := r.withTimeout(ctx, DefaultTimeout)
		defer cancel()
		var body struct {
			Connection connection `json:"connection"`
			Revoked    bool       `json:"revoked"`
		}
		raw, err := r.getJSON(ctx, http.MethodPost, connPath(id, "/disconnect"), nil, nil, &body)
		if err != nil {
			return err
		}
		if r.jsonOutput() {
			return r.printJSON(raw)
		}
		if body.Revoked {
			r.outf("%s: disconnected; the grant was revoked at Notion\n", id)
		} else {
			r.outf("%s: disconnected; the grant was not revoked at Notion (the connection was not active, or Notion did not confirm):\n"+
				"the workspace owner can remove the integration in Notion's settings\n", id)
		}
		if u := body.Connection.ReconnectURL; u != "" {
			r.outf("reconnect link: %s\n", clean(u))
		}
		return nil
	}
}

// confirm asks on stderr and reads one line from stdin; "y" and "yes"
// confirm. The read is abandoned when ctx ends (stdin cannot be
// interrupted).
func (r *runner) confirm(ctx context.Context, prompt string) (bool, error) {
	r.errf("%s", prompt)
	type answer struct {
		line string
		err  error
	}
	ch := make(chan answer, 1)
	go func() {
		line, err := bufio.NewReader(r.env.Stdin).ReadString('\n')
		ch <- answer{line, err}
	}()
	select {
	case <-ctx.Done():
		r.errf("\n")
		return false, errors.New("interrupted")
	case a := <-ch:
		if a.err != nil && a.line == "" {
			r.errf("\n")
			return false, nil
		}
		switch strings.ToLower(strings.TrimSpace(a.line)) {
		case "y", "yes":
			return true, nil
		}
		return false, nil
	}
}

func setupConnectURL(fs *flag.FlagSet) runFunc {
	id := fs.String("id", "", "make a reconnect link for this existing connection `ID`")
	base := fs.String("base", "", "public base `URL` of the control plane, as browsers reach it (default: the server's, or -server)")
	return func(ctx context.Context, r *runner, args []string) error {
		if len(args) != 0 {
			return usagef(r.cmd, "connect-url takes no arguments (use -id ID)")
		}
		root := r.base
		if *base != "" {
			u, err := parseServer(*base)
			if err != nil {
				return usagef(r.cmd, "-base must be an http(s) URL")
			}
			root = u
		}
		build := func(q url.Values) string {
			u := *root
			u.Path = strings.TrimRight(u.Path, "/") + control.StartPath
			u.RawPath = ""
			u.RawQuery = q.Encode()
			return u.String()
		}
		link := build(nil)
		if *id != "" {
			if err := checkID(r.cmd, *id); err != nil {
				return err
			}
			l, err := r.mintLink(ctx, *id, "")
			if err != nil {
				return err
			}
			link = clean(l.URL)
			if *base != "" {
				// The signature does not cover the host: the same link
				// works on the public base URL browsers use.
				u, err := url.Parse(l.URL)
				if err != nil {
					return fmt.Errorf("the server returned an unusable link")
				}
				link = build(u.Query())
			}
		}
		if r.jsonOutput() {
			return r.printValue(map[string]string{"url": link})
		}
		r.outf("%s\n", link)
		return nil
	}
}

func setupRekey(*flag.FlagSet) runFunc {
	return func(ctx context.Context, r *runner, args []string) error {
		if len(args) != 0 {
			return usagef(r.cmd, "takes no arguments")
		}
		var total control.RekeyResult
		after := ""
		for {
			pctx, cancel := r.withTimeout(ctx, DefaultTimeout)
			var page control.RekeyResult
			q := url.Values{}
			if after != "" {
				q.Set("after", after)
			}
			_, err := r.getJSON(pctx, http.MethodPost, "/rekey", q, nil, &page)
			cancel()
			if err != nil {
				return err
			}
			total.Rekeyed += page.Rekeyed
			total.Unchanged += page.Unchanged
			total.Failed += page.Failed
			if page.Next == "" {
				break
			}
			after = page.Next
		}
		if r.jsonOutput() {
			return r.printValue(total)
		}
		r.outf("re-sealed %d, already current %d, failed %d\n", total.Rekeyed, total.Unchanged, total.Failed)
		if total.Failed > 0 {
			return fmt.Errorf("%d connections could not be re-sealed (see the scheduler's log); keep the old key", total.Failed)
		}
		return nil
	}
}

// mintLink asks the server for a reconnect link.
func (r *runner) mintLink(ctx context.Context, id, ttl string) (control.ReconnectLink, error) {
	ctx, cancel := r.withTimeout(ctx, DefaultTimeout)
	defer cancel()
	var q url.Values
	if ttl != "" {
		q = url.Values{"ttl": {ttl}}
	}
	var l control.ReconnectLink
	_, err := r.getJSON(ctx, http.MethodPost, connPath(id, "/reconnect-link"), q, nil, &l)
	var ae *apiError
	if errors.As(err, &ae) && ae.Code == "not_found" {
		return l, fmt.Errorf("%s: reconnect links are for existing connections only; a new workspace connects "+
			"through the link of 'connect-url' without -id (its connection id becomes ws-<workspace id>)", ae.Message)
	}
	return l, err
}

func setupReconnectLink(fs *flag.FlagSet) runFunc {
	ttl := fs.Duration("ttl", 0, "how long the link works (default: the server's, 7 days; at most 30 days)")
	return func(ctx context.Context, r *runner, args []string) error {
		id, err := oneID(r.cmd, args)
		if err != nil {
			return err
		}
		if *ttl < 0 || *ttl > control.MaxLinkTTL {
			return usagef(r.cmd, "-ttl must be more than 0 and at most %s", control.MaxLinkTTL)
		}
		d := ""
		if *ttl > 0 {
			d = ttl.String()
		}
		l, err := r.mintLink(ctx, id, d)
		if err != nil {
			return err
		}
		if r.jsonOutput() {
			return r.printValue(l)
		}
		r.outf("%s\n", clean(l.URL))
		r.errf("%s: the link works until %s (%s) or its first successful use; send it only to the connection's owner\n",
			id, l.ExpiresAt.Format(time.RFC3339), relative(l.ExpiresAt, r.env.Now()))
		return nil
	}
}
