package keymigrate

import (
	"context"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/notionsync/notionsync/internal/redistest"
	"github.com/notionsync/notionsync/jobs"
	"github.com/notionsync/notionsync/tokens"
)

// TestMigratedFixtureReadByTheNewCode migrates the fixture (written by
// tokens.Store at e4807bb) and reads it with this release's tokens.Store,
// tokens.Source and jobs.StateReader, which know only the new key names.
func TestMigratedFixtureReadByTheNewCode(t *testing.T) {
	ctx := context.Background()
	rdb := client(t)
	p := redistest.UniquePrefix(t)
	loadFixture(ctx, t, rdb, p)
	old := snapshot(ctx, t, rdb, p)

	kr, err := tokens.NewKeyring(tokens.Key{ID: "fixture", Secret: fixtureKeySecret})
	if err != nil {
		t.Fatal(err)
	}
	st, err := tokens.NewStore(tokens.StoreConfig{Redis: rdb, Keyring: kr, KeyPrefix: p})
	if err != nil {
		t.Fatal(err)
	}
	// Before the migration the new code sees nothing: the test would pass
	// for the wrong reason otherwise.
	if conns, _, err := st.List(ctx, "", 100); err != nil || len(conns) != 0 {
		t.Fatalf("before the migration: List = %d connections, %v", len(conns), err)
	}
	if _, err := newMigrator(t, Config{Redis: rdb, KeyPrefix: p}).Run(ctx); err != nil {
		t.Fatal(err)
	}

	// Every connection, with its status, version and timeline.
	var ids []string
	for name := range old {
		if id, ok := strings.CutPrefix(name, "conn:"); ok && !strings.Contains(id, ":") {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	conns, next, err := st.List(ctx, "", 100)
	if err != nil || next != "" {
		t.Fatalf("List: %v, next %q", err, next)
	}
	var listed []string
	for _, c := range conns {
		listed = append(listed, c.ID)
	}
	sort.Strings(listed)
	if !slices.Equal(listed, ids) {
		t.Fatalf("List = %q\nwant %q", listed, ids)
	}
	for _, id := range ids {
		rec := old["conn:"+id].Hash
		c, err := st.Get(ctx, id)
		if err != nil {
			t.Fatalf("Get(%s): %v", id, err)
		}
		if string(c.Status) != rec["status"] || c.Version != int64(mustAtoi(t, rec["v"])) {
			t.Errorf("%s: status %s version %d; the old record says %s, %s", id, c.Status, c.Version, rec["status"], rec["v"])
		}
		evs, err := st.Events(ctx, id)
		if err != nil || len(evs) != len(old["conn:"+id+":events"].List) {
			t.Errorf("%s: %d events (%v), want %d", id, len(evs), err, len(old["conn:"+id+":events"].List))
		}
	}
	// The refresh-due index and the status indexes.
	due, err := st.Due(ctx, time.Now().Add(24*365*time.Hour), 1000)
	if err != nil {
		t.Fatal(err)
	}
	var wantDue []string
	for m := range old["due"].ZSet {
		wantDue = append(wantDue, m)
	}
	sort.Strings(due)
	sort.Strings(wantDue)
	if !slices.Equal(due, wantDue) {
		t.Errorf("Due = %q\nwant %q", due, wantDue)
	}
	counts, err := st.CountByStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range tokens.Statuses {
		if n := int64(len(old["status:"+string(s)].ZSet)); counts[s] != n {
			t.Errorf("CountByStatus[%s] = %d, want %d", s, counts[s], n)
		}
		pageIDs, _, err := st.PageIDs(ctx, s, tokens.PageCursor{}, 100)
		if err != nil || len(pageIDs) != len(old["status:"+string(s)].ZSet) {
			t.Errorf("PageIDs(%s) = %q, %v", s, pageIDs, err)
		}
	}
	if err := st.CheckKeys(ctx, 20); err != nil {
		t.Errorf("CheckKeys: %v", err)
	}

	// A refresh of a moved connection: the sealed refresh token opens, is
	// spent, and the new pair is committed under the new names.
	var mu sync.Mutex
	var spent []string
	src, err := tokens.NewSource(ctx, tokens.Config{Store: st, Provider: tokens.ProviderFunc(
		func(_ context.Context, rt string) (*tokens.Grant, error) {
			mu.Lock()
			spent = append(spent, rt)
			mu.Unlock()
			return &tokens.Grant{AccessToken: "at-new", RefreshToken: "rt-new", ExpiresIn: time.Hour}, nil
		})})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	tok, err := src.ForceRefresh(ctx, "conn-00")
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken != "at-new" || tok.Version != int64(mustAtoi(t, old["conn:conn-00"].Hash["v"]))+1 ||
		!slices.Equal(spent, []string{"rt-conn-00"}) {
		t.Errorf("refresh after the move: token version %d, refresh tokens spent %q", tok.Version, spent)
	}

	// The sync state of every connection that had one.
	sr := jobs.NewStateReader(rdb, p)
	for _, id := range ids {
		h, ok := old["sync:"+id]
		if !ok {
			continue
		}
		s, err := sr.State(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if s.Cursor.UnixMilli() != int64(mustAtoi(t, h.Hash["cursor"])) || s.PagesSynced != int64(mustAtoi(t, h.Hash["pages_synced"])) ||
			s.Pending != int64(len(old["sync:"+id+":pending"].Set)) || len(s.Errors) != len(old["sync:"+id+":errors"].Hash) ||
			s.Reconcile == nil {
			t.Errorf("%s: sync state %+v does not match the old keys", id, s)
		}
	}
}
