package control

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/notionsync/notionsync/internal/redistest"
	"github.com/notionsync/notionsync/jobs"
	"github.com/notionsync/notionsync/tokens"
	"github.com/notionsync/notionsync/tokens/notionauth"
)

// countHook counts the Redis commands and round trips a client sends.
type countHook struct{ cmds, trips atomic.Int64 }

func (h *countHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.cmds.Add(1)
		h.trips.Add(1)
		return next(ctx, cmd)
	}
}
func (h *countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.cmds.Add(int64(len(cmds)))
		h.trips.Add(1)
		return next(ctx, cmds)
	}
}

// BenchmarkConsoleList measures one list view over 100,000 connections in
// a real redis-server: the Redis commands and round trips each view sends
// and its time, unfiltered and filtered (the whole handler: auth, index,
// records, sync states, template). Seeding takes a while (about a minute
// on two cores).
//
//	go test -run '^$' -bench BenchmarkConsoleList -benchtime 200x ./internal/control/
func BenchmarkConsoleList(b *testing.B) {
	const n = 100_000
	srvR := redistest.StartTB(b, redistest.Options{})
	hook := &countHook{}
	rdb := srvR.Client()
	b.Cleanup(func() { rdb.Close() })
	ctx := context.Background()
	kr, err := tokens.NewKeyring(testKey)
	if err != nil {
		b.Fatal(err)
	}
	clk := &clock{t: time.Now().Add(-time.Hour)}
	store, err := tokens.NewStore(tokens.StoreConfig{Redis: rdb, Keyring: kr, Now: clk.Now})
	if err != nil {
		b.Fatal(err)
	}
	// Seed: 10% paused, 5% needs_reauth, 2% disconnected, 3% with
	// per-object errors; one workspace in 10,000 is named "Needle".
	var wg sync.WaitGroup
	var failed atomic.Value
	const workers = 8
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				id := fmt.Sprintf("conn-%06d", i)
				name := fmt.Sprintf("Workspace %d", i)
				if i%10_000 == 5_000 {
					name = fmt.Sprintf("Needle %d", i)
				}
				if _, err := store.Connect(ctx, id, &tokens.Grant{AccessToken: "at", RefreshToken: "rt"}, timing,
					tokens.ConnectOptions{Meta: map[string]string{MetaWorkspaceID: "ws-" + id, MetaWorkspaceName: name}}); err != nil {
					failed.Store(err)
					return
				}
				switch {
				case i%100 < 10:
					err = store.Pause(ctx, id)
				case i%100 < 15:
					err = store.MarkNeedsReauth(ctx, id, "bench")
				case i%100 < 17:
					err = store.Disconnect(ctx, id)
				}
				if err == nil && i%100 >= 50 && i%100 < 53 {
					err = rdb.ZAdd(ctx, jobs.ErroredKey("notionsync:", id), redis.Z{Member: id}).Err()
					if err == nil {
						err = rdb.HSet(ctx, jobs.SyncKey("notionsync:", id)+":errors", "obj",
							`{"since":1,"kind":"permanent","msg":"denied"}`).Err()
					}
				}
				if err != nil {
					failed.Store(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err, ok := failed.Load().(error); ok {
		b.Fatal(err)
	}

	rdbCounted := srvR.Client()
	rdbCounted.AddHook(hook)
	b.Cleanup(func() { rdbCounted.Close() })
	store2, err := tokens.NewStore(tokens.StoreConfig{Redis: rdbCounted, Keyring: kr})
	if err != nil {
		b.Fatal(err)
	}
	oauth, err := notionauth.New(notionauth.Config{ClientID: "id", ClientSecret: "secret", BaseURL: "http://" + deadBenchAddr(b)})
	if err != nil {
		b.Fatal(err)
	}
	src, err := tokens.NewSource(ctx, tokens.Config{Store: store2, Provider: oauth, Timing: timing})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { src.Close() })
	s, err := New(Config{Source: src, OAuth: oauth, Redis: rdbCounted, Enqueuer: &fakeEnqueuer{},
		PublicURL: "http://console.test", AdminToken: testAdminToken, Timing: timing,
		Console: testConsoleSync(rdbCounted, "")})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	h := s.Handler()

	for _, bc := range []struct{ name, query string }{
		{"all/first", ""},
		{"all/deep", "after=" + fmt.Sprint(clk.Now().UnixMilli()) + ".conn-050000"},
		{"status=paused", "status=paused"},
		{"status=needs_reauth", "status=needs_reauth"},
		{"reason=operator", "reason=operator"},
		{"errors", "errors=1"},
		{"errors+status=active", "errors=1&status=active"},
		{"search=needle", "q=needle"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			hook.cmds.Store(0)
			hook.trips.Store(0)
			rows := 0
			for b.Loop() {
				req := httptest.NewRequest("GET", "/admin/connections?"+bc.query, nil)
				req.SetBasicAuth("operator", testAdminToken)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("%d %.300s", rec.Code, rec.Body.String())
				}
				rows += len(rowRE.FindAllStringIndex(rec.Body.String(), -1))
			}
			b.ReportMetric(float64(rows)/float64(b.N), "rows/view")
			b.ReportMetric(float64(hook.cmds.Load())/float64(b.N), "redis-cmds/view")
			b.ReportMetric(float64(hook.trips.Load())/float64(b.N), "round-trips/view")
		})
	}
}

func deadBenchAddr(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
