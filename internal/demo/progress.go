package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Progress is a snapshot of a demo: the sink against the sandbox, the token
// endpoint's counters, and the connection as the admin API shows it.
type Progress struct {
	ConnectionID string
	// Status and Version are the connection's (empty and 0 before Connect).
	Status  string
	Version int64
	// Pending counts objects discovered and not yet stored (the sync
	// state's Pending), when the admin API reports it.
	Pending int64

	// PagesExpected and BlocksExpected are what a complete sync holds now
	// (the sandbox's /_sandbox/expected).
	PagesExpected  int
	BlocksExpected int
	// PagesSynced counts expected pages whose file is in the sink and live;
	// BlocksSynced the blocks of those files.
	PagesSynced  int
	BlocksSynced int
	// Complete: every expected page is in the sink, live, with its block
	// count.
	Complete bool
	// Incomplete names up to 5 pages that are missing or differ (id: why).
	Incomplete []string

	// RefreshGrants, InvalidGrants and Exchanges are the sandbox token
	// endpoint's counters (all workspaces).
	RefreshGrants int
	InvalidGrants int
	Exchanges     int

	// Running counts the processes of each kind still running.
	WorkersRunning, SchedulersRunning int
}

// String is the progress line the demo prints.
func (p Progress) String() string {
	status := p.Status
	if status == "" {
		status = "not connected"
	}
	return fmt.Sprintf("pages synced %d/%d · token refreshes %d · invalid_grant %d · status %s",
		p.PagesSynced, p.PagesExpected, p.RefreshGrants, p.InvalidGrants, status)
}

// SyncedPage is one page document of the file sink.
type SyncedPage struct {
	ID      string
	Deleted bool
	// Blocks counts the blocks of the "blocks" tree, nested ones included.
	Blocks int
}

// ReadSyncedPages reads the page documents the file sink holds for
// connection connID under root: <root>/<connID>/pages/<id>.json. A missing
// folder is an empty result.
func ReadSyncedPages(root, connID string) (map[string]SyncedPage, error) {
	dir := filepath.Join(root, connID, "pages")
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]SyncedPage{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	pages := make(map[string]SyncedPage, len(entries))
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || strings.HasPrefix(name, ".") || !strings.HasSuffix(name, ".json") {
			continue // temporary files of the sink start with '.'
		}
		data, err := os.ReadFile(filepath.Join(dir, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("demo: %w", err)
		}
		p, err := ParsePageDocument(data)
		if err != nil {
			return nil, fmt.Errorf("demo: %s: %w", name, err)
		}
		if p.ID == "" {
			p.ID = strings.TrimSuffix(name, ".json")
		}
		pages[p.ID] = p
	}
	return pages, nil
}

// ParsePageDocument reads a file-sink page document: its id, whether it is
// a tombstone, and the number of blocks in its "blocks" tree.
func ParsePageDocument(data []byte) (SyncedPage, error) {
	var doc struct {
		Meta struct {
			ID      string `json:"id"`
			Deleted bool   `json:"deleted"`
		} `json:"_notionsync"`
		ID     string       `json:"id"`
		Blocks []blockCount `json:"blocks"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return SyncedPage{}, err
	}
	p := SyncedPage{ID: strings.ToLower(doc.Meta.ID), Deleted: doc.Meta.Deleted}
	if p.ID == "" {
		p.ID = strings.ToLower(doc.ID)
	}
	for _, b := range doc.Blocks {
		p.Blocks += b.count()
	}
	return p, nil
}

// blockCount decodes only the shape of a block tree.
type blockCount struct {
	Children []blockCount `json:"children"`
}

func (b blockCount) count() int {
	n := 1
	for _, c := range b.Children {
		n += c.count()
	}
	return n
}

// Progress compares the sink with the sandbox's expectation and reads the
// token counters and the connection's state. Before Connect it reports the
// sandbox side only.
func (c *Cluster) Progress(ctx context.Context) (Progress, error) {
	p := Progress{ConnectionID: c.ConnectionID()}
	c.mu.Lock()
	for _, w := range c.workers {
		if !w.proc.Exited() {
			p.WorkersRunning++
		}
	}
	for _, s := range c.schedulers {
		if !s.proc.Exited() {
			p.SchedulersRunning++
		}
	}
	c.mu.Unlock()

	stats, err := c.SandboxStats(ctx)
	if err != nil {
		return p, err
	}
	p.RefreshGrants, p.InvalidGrants, p.Exchanges = stats.Tokens.RefreshGrants, stats.Tokens.InvalidGrants, stats.Tokens.Exchanges
	exp, err := c.Expected(ctx)
	if err != nil {
		return p, err
	}
	p.PagesExpected, p.BlocksExpected = exp.PageCount, exp.BlockCount
	if p.ConnectionID == "" {
		return p, nil
	}

	conn, err := c.Connection(ctx, p.ConnectionID)
	if err != nil {
		return p, err
	}
	p.Status, p.Version = string(conn.Status), conn.Version
	if m, ok := conn.Sync.(map[string]any); ok {
		if n, ok := m["Pending"].(float64); ok {
			p.Pending = int64(n)
		}
	}

	synced, err := ReadSyncedPages(c.SyncedDir(), p.ConnectionID)
	if err != nil {
		return p, err
	}
	for _, e := range exp.Pages {
		got, ok := synced[strings.ToLower(e.ID)]
		switch {
		case !ok:
			p.Incomplete = append(p.Incomplete, e.ID+": missing")
			continue
		case got.Deleted:
			p.Incomplete = append(p.Incomplete, e.ID+": stored as deleted")
			continue
		}
		p.PagesSynced++
		p.BlocksSynced += got.Blocks
		if got.Blocks != e.Blocks {
			p.Incomplete = append(p.Incomplete, fmt.Sprintf("%s: %d of %d blocks", e.ID, got.Blocks, e.Blocks))
		}
	}
	p.Complete = len(p.Incomplete) == 0
	sort.Strings(p.Incomplete)
	if len(p.Incomplete) > 5 {
		p.Incomplete = p.Incomplete[:5]
	}
	return p, nil
}

// Watch takes a progress snapshot every interval (default 2s) until ctx
// ends or until reports true for a snapshot, and writes the progress line
// to Options.Out when it changed, and otherwise at most every
// Options.ProgressHeartbeat (so a stalled demo still shows it is alive,
// without a screen of identical lines). It also reports processes that
// exit unexpectedly. It returns the last snapshot, with ctx's error when
// ctx ended first. A failed snapshot is reported (like a line: on change)
// and retried, not returned.
func (c *Cluster) Watch(ctx context.Context, interval time.Duration, until func(Progress) bool) (Progress, error) {
	if interval <= 0 {
		interval = 2 * time.Second
	}
	start := time.Now()
	lines := &progressPrinter{out: c.opts.Out, heartbeat: c.opts.ProgressHeartbeat}
	reported := map[*Process]bool{}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	var last Progress
	announced := false
	for {
		p, err := c.Progress(ctx)
		switch {
		case ctx.Err() != nil:
			return last, ctx.Err()
		case err != nil:
			lines.print(time.Now(), since(start), fmt.Sprintf("progress unavailable: %v", err))
		default:
			last = p
			lines.print(time.Now(), since(start), p.String())
			if p.Complete && p.ConnectionID != "" && !announced {
				announced = true
				fmt.Fprintf(c.opts.Out, "%6s  every page is synced with all its blocks (%d pages, %d blocks): %s\n",
					since(start), p.PagesSynced, p.BlocksSynced, filepath.Join(c.SyncedDir(), p.ConnectionID, "pages"))
			}
		}
		for _, proc := range c.Processes() {
			if proc.Unexpected() && !reported[proc] {
				reported[proc] = true
				fmt.Fprintf(c.opts.Out, "%6s  %s exited unexpectedly (%v); see %s\n", since(start), proc.Name(), proc.ExitErr(), proc.LogPath())
			}
		}
		if err == nil && until != nil && until(p) {
			return p, nil
		}
		select {
		case <-ctx.Done():
			return last, ctx.Err()
		case <-ticker.C:
		}
	}
}

// progressPrinter writes a progress line when its text changed, or when
// heartbeat has passed since the last one was written.
type progressPrinter struct {
	out       io.Writer
	heartbeat time.Duration
	last      string
	lastAt    time.Time
	printed   bool
}

// print writes "elapsed  line" if line differs from the last line written
// or the heartbeat is due at now, and reports whether it wrote.
func (p *progressPrinter) print(now time.Time, elapsed, line string) bool {
	if p.printed && line == p.last && now.Sub(p.lastAt) < p.heartbeat {
		return false
	}
	fmt.Fprintf(p.out, "%6s  %s\n", elapsed, line)
	p.last, p.lastAt, p.printed = line, now, true
	return true
}

func since(t time.Time) string { return time.Since(t).Round(time.Second).String() }
