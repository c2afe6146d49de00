package jobs_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/notionsync/notionsync/internal/notionfake"
	"github.com/notionsync/notionsync/jobs"
	"github.com/notionsync/notionsync/sync/sink"
)

func userCount(e *env) int {
	return e.fake.DataStats().Count(notionfake.EndpointListUsers, 0)
}

// TestUsersSyncedAndNamed: the first sweep lists the workspace's users
// into the sink before it stores pages, so the Markdown names the people a
// row references; later sweeps list them again only once UsersInterval has
// passed on the handlers' clock.
func TestUsersSyncedAndNamed(t *testing.T) {
	t.Parallel()
	onBoth(t, func(t *testing.T, cluster bool) {
		t.Parallel()
		root := t.TempDir()
		spec := notionfake.SeedSpec{Seed: 3, Pages: 2, BlocksPerPage: 2, Databases: 1, RowsPerDatabase: 3, Users: 3}
		e := newEnv(t, envOpts{cluster: cluster, spec: spec, sinkURL: "file://" + root})
		e.clock.Advance(90 * time.Second)
		e.startWorkers(4)
		e.sweep()
		e.waitSynced()
		e.waitIdle()
		us, err := e.sink.(sink.UserStore).GetUsers(context.Background(), e.conn)
		if err != nil {
			t.Fatal(err)
		}
		want, err := e.fake.Users(e.ws)
		if err != nil {
			t.Fatal(err)
		}
		if len(us.Users) != len(want) {
			t.Fatalf("sink holds %d users, Notion lists %d", len(us.Users), len(want))
		}
		for i, w := range want {
			g := us.Users[i]
			if g.ID != w.ID || g.Name != w.Name || g.Email != w.Email || g.Type != string(w.Type) {
				t.Errorf("user %d: %+v, want %+v", i, g, w)
			}
		}
		// Every row's Markdown names its owner (a partial user in the page
		// object) and its creator's mention.
		names := map[string]string{}
		for _, u := range want {
			names[u.ID] = u.Name
		}
		for _, id := range e.seed.RowIDs {
			p, _, err := e.sink.(sink.Reader).GetPage(context.Background(), e.conn, id)
			if err != nil {
				t.Fatal(err)
			}
			owner := ownerOf(t, p)
			md, err := os.ReadFile(filepath.Join(root, e.conn, "pages", id+".md"))
			if err != nil {
				t.Fatal(err)
			}
			if names[owner] == "" || !strings.Contains(string(md), "| Owner | "+names[owner]+" |") {
				t.Errorf("row %s: Markdown does not name owner %s (%q):\n%s", id, owner, names[owner], md)
			}
		}
		if n := userCount(e); n != 1 {
			t.Fatalf("first sync listed users %d times, want 1", n)
		}

		// Within the interval: no listing.
		e.clock.Advance(30 * time.Minute)
		if err := e.runTask(jobs.TypeSweep, `{"conn_id":"`+e.conn+`"}`); err != nil {
			t.Fatal(err)
		}
		if n := userCount(e); n != 1 {
			t.Fatalf("a sweep inside the interval listed users (%d listings)", n)
		}
		// After it: listed again, with the new user.
		added, err := e.fake.AddUser(e.ws, notionfake.User{Type: notionfake.UserPerson, Name: "Newcomer"})
		if err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(31 * time.Minute)
		if err := e.runTask(jobs.TypeSweep, `{"conn_id":"`+e.conn+`"}`); err != nil {
			t.Fatal(err)
		}
		if n := userCount(e); n != 2 {
			t.Fatalf("a sweep after the interval made %d listings in all, want 2", n)
		}
		us, err = e.sink.(sink.UserStore).GetUsers(context.Background(), e.conn)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, u := range us.Users {
			found = found || (u.ID == added.ID && u.Name == "Newcomer")
		}
		if !found {
			t.Fatalf("the second listing did not store the new user: %+v", us.Users)
		}
	})
}

// TestUsersFailureNeverFailsTheSweep: a transient failure of the listing
// leaves the sweep alone and the next sweep lists again; a permanent one
// (403: an integration without the user-information capability) is recorded
// as the connection's "users" error and waits for the next interval.
func TestUsersFailureNeverFailsTheSweep(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{spec: notionfake.SeedSpec{Seed: 4, Pages: 2, Users: 2}})
	e.clock.Advance(90 * time.Second)
	sweep := func() {
		t.Helper()
		if err := e.runTask(jobs.TypeSweep, `{"conn_id":"`+e.conn+`"}`); err != nil {
			t.Fatalf("sweep: %v", err)
		}
	}
	// The users listing is the sweep's first request: 500s beyond the
	// client's retries make it fail; the sweep's search still runs.
	e.fake.FailDataNext(4, http.StatusInternalServerError)
	sweep()
	if _, err := e.sink.(sink.UserStore).GetUsers(context.Background(), e.conn); err == nil {
		t.Fatal("users stored despite the failure")
	}
	e.clock.Advance(time.Minute)
	sweep() // transient: claim given back, listed now
	if _, err := e.sink.(sink.UserStore).GetUsers(context.Background(), e.conn); err != nil {
		t.Fatalf("the sweep after a transient failure did not list users: %v", err)
	}

	// Permanent: recorded, and not retried before the interval.
	e.clock.Advance(jobs.DefaultUsersInterval)
	e.fake.FailDataNext(1, http.StatusForbidden)
	before := userCount(e)
	sweep()
	st, err := e.h.State(context.Background(), e.conn)
	if err != nil {
		t.Fatal(err)
	}
	if st.Errors["users"] == "" || st.ErrorDetails["users"].Kind != jobs.ErrorPermanent {
		t.Fatalf("403 not recorded as a permanent users error: %v %v", st.Errors, st.ErrorDetails)
	}
	e.clock.Advance(time.Minute)
	sweep()
	if n := e.fake.DataStats().Count(notionfake.EndpointListUsers, 0) - before; n != 1 {
		t.Fatalf("%d listings after a permanent failure, want 1 (the failed one) until the interval passes", n)
	}
}

// A users listing whose body is cut short (or an HTML page) is retried by
// the next sweep, as a page would be: no permanent error that would hold
// the listing back for an interval.
func TestUsersUnreadableAnswerIsRetried(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{spec: notionfake.SeedSpec{Seed: 4, Pages: 2, Users: 2}})
	e.clock.Advance(90 * time.Second)
	e.fake.MalformedNext(1) // the users listing is the sweep's first request
	if err := e.runTask(jobs.TypeSweep, `{"conn_id":"`+e.conn+`"}`); err != nil {
		t.Fatalf("sweep: %v", err)
	}
	st, err := e.h.State(context.Background(), e.conn)
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := st.ErrorDetails["users"]; ok && d.Kind == jobs.ErrorPermanent {
		t.Fatalf("a cut answer recorded as a permanent users error: %+v", d)
	}
	e.clock.Advance(time.Minute)
	if err := e.runTask(jobs.TypeSweep, `{"conn_id":"`+e.conn+`"}`); err != nil {
		t.Fatalf("sweep: %v", err)
	}
	if _, err := e.sink.(sink.UserStore).GetUsers(context.Background(), e.conn); err != nil {
		t.Fatalf("the sweep after a cut answer did not list users: %v", err)
	}
}

// ownerOf returns the user id of a stored row's people property "Owner".
func ownerOf(t *testing.T, p *sink.Page) string {
	t.Helper()
	var obj struct {
		Properties map[string]struct {
			People []struct {
				ID string `json:"id"`
			} `json:"people"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(p.Object, &obj); err != nil {
		t.Fatal(err)
	}
	people := obj.Properties["Owner"].People
	if len(people) != 1 {
		t.Fatalf("page %s: Owner is %v", p.ID, people)
	}
	return people[0].ID
}

// The sweep claims the user listing in its first round trip; a stored
// claim that cannot be read (not a time) fails that claim alone: the
// sweep syncs the workspace all the same.
func TestUnreadableUsersClaimDoesNotFailTheSweep(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{spec: notionfake.SeedSpec{Seed: 5, Pages: 2, BlocksPerPage: 1, Users: 1}})
	e.syncTimeout = 20 * time.Second
	if err := e.rdb.Set(context.Background(), jobs.SyncKey("", e.conn)+":users", "not a time", 0).Err(); err != nil {
		t.Fatal(err)
	}
	e.startWorkers(2)
	e.sweep()
	if st := e.waitSynced(); st.PagesSynced != 2 {
		t.Fatalf("%d pages synced, want 2", st.PagesSynced)
	}
	e.assertComplete()
}
