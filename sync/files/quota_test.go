package files_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/notionsync/notionsync/internal/keyspace"
	"github.com/notionsync/notionsync/internal/redistest"
	"github.com/notionsync/notionsync/sync/files"
)

// Four workers (Downloaders) with a RedisQuota each on one Redis download
// 24 distinct files of one connection at once, all requests answered
// together: the connection's quota holds for all of them together, with
// declared lengths (a reservation fits or fails whole) and without (the
// stream is cut at what could be reserved, the cap reserved up front). With a quota counted per
// worker (Config.Quota unset) every worker would store up to the quota:
// four times too much.
//
// It runs on a single Redis and on a Redis Cluster (the counter is one key
// in the connection's shard: each script names one slot).
func TestQuotaHoldsAcrossConcurrentWorkers(t *testing.T) {
	single := redistest.StartTB(t, redistest.Options{}).Client()
	t.Cleanup(func() { single.Close() })
	backends := []struct {
		name string
		rdb  redis.UniversalClient
	}{{"single", single}}
	if !testing.Short() {
		cluster := redistest.StartClusterTB(t, redistest.ClusterOptions{}).Client()
		t.Cleanup(func() { cluster.Close() })
		backends = append(backends, struct {
			name string
			rdb  redis.UniversalClient
		}{"cluster", cluster})
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { quotaAcrossWorkers(t, b.rdb) })
	}
}

func quotaAcrossWorkers(t *testing.T, rdb redis.UniversalClient) {
	const (
		workers, perWorker = 4, 6
		fileBytes          = 1000
		quota              = 10_500
	)
	for _, chunked := range []bool{false, true} {
		t.Run(fmt.Sprintf("chunked=%v", chunked), func(t *testing.T) {
			// The server holds every answer until all requests arrived, so
			// every reservation races every other.
			var (
				mu      sync.Mutex
				arrived int
				all     = make(chan struct{})
			)
			web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				if arrived++; arrived == workers*perWorker {
					close(all)
				}
				mu.Unlock()
				select {
				case <-all:
				case <-r.Context().Done():
					return
				}
				if chunked {
					w.(http.Flusher).Flush() // no Content-Length
				}
				w.Write([]byte(strings.Repeat("x", fileBytes-len(r.URL.Path)) + r.URL.Path))
			}))
			defer web.Close()
			host := strings.TrimPrefix(web.URL, "http://")
			store := newStore(t)
			conn := "conn-" + fmt.Sprint(chunked)
			ctx := context.Background()
			var wg sync.WaitGroup
			errs := make(chan error, workers*perWorker)
			for w := range workers {
				q, err := files.NewRedisQuota(rdb, files.RedisQuotaConfig{KeyPrefix: "t:"})
				if err != nil {
					t.Fatal(err)
				}
				d, err := files.New(files.Config{AllowedHosts: []string{host}, AllowHTTP: true, AllowPrivateAddresses: true,
					MaxFileBytes: 4000, ConnectionQuota: quota, Concurrency: perWorker, Quota: q})
				if err != nil {
					t.Fatal(err)
				}
				for i := range perWorker {
					wg.Go(func() {
						_, err := d.Download(ctx, store, conn, "p", ref(fmt.Sprintf("%s/w%d-f%d", web.URL, w, i)))
						errs <- err
					})
				}
			}
			wg.Wait()
			close(errs)
			stored, refused := 0, 0
			for err := range errs {
				switch {
				case err == nil:
					stored++
				case errors.Is(err, files.ErrQuotaExceeded):
					refused++
				default:
					t.Errorf("download: %v", err)
				}
			}
			used, err := store.FileUsage(ctx, conn)
			if err != nil {
				t.Fatal(err)
			}
			// Declared lengths fill the quota exactly; unknown ones reserve
			// up to the cap each, so fewer fit, but never more.
			want := quota / fileBytes
			if used > quota || stored == 0 || !chunked && stored != want || refused != workers*perWorker-stored {
				t.Errorf("%d bytes stored in %d files (%d refused) for a quota of %d: want %d files", used, stored, refused, quota, want)
			}
			// The counter settled to the bytes stored: no reservation is
			// left behind.
			q, _ := files.NewRedisQuota(rdb, files.RedisQuotaConfig{KeyPrefix: "t:"})
			if n, err := rdb.Get(ctx, q.Key(conn)).Int64(); err != nil || n != used {
				t.Errorf("counter %d (%v), want %d", n, err, used)
			}
		})
	}
}

// The counter lives in the connection's shard, and is seeded from the
// store's usage when it does not exist (a new connection, or after Resync):
// what was stored before counts.
func TestRedisQuotaSeedsFromTheStore(t *testing.T) {
	srv := redistest.StartTB(t, redistest.Options{})
	rdb := srv.Client()
	t.Cleanup(func() { rdb.Close() })
	q, err := files.NewRedisQuota(rdb, files.RedisQuotaConfig{KeyPrefix: "t:", Resync: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if want := keyspace.Conn("t:", "c1") + "files:c1:bytes"; q.Key("c1") != want {
		t.Errorf("key %q, want %q", q.Key("c1"), want)
	}
	ctx := context.Background()
	seeds := 0
	usage := func(context.Context) (int64, error) { seeds++; return 900, nil }
	if got, err := q.Reserve(ctx, "c1", 200, 1000, false, usage); err != nil || got != 0 {
		t.Errorf("200 bytes over 900 of 1000: reserved %d (%v), want 0", got, err)
	}
	if got, err := q.Reserve(ctx, "c1", 200, 1000, true, usage); err != nil || got != 100 {
		t.Errorf("partial: reserved %d (%v), want the 100 left", got, err)
	}
	if err := q.Settle(ctx, "c1", 100, 40); err != nil {
		t.Fatal(err)
	}
	if err := q.Release(ctx, "c1", 500); err != nil {
		t.Fatal(err)
	}
	if n, _ := rdb.Get(ctx, q.Key("c1")).Int64(); n != 440 || seeds != 1 {
		t.Errorf("counter %d after seeds %d, want 440 after 1", n, seeds)
	}
	if ttl := rdb.PTTL(ctx, q.Key("c1")).Val(); ttl <= 0 || ttl > time.Hour {
		t.Errorf("counter TTL %v, want up to Resync", ttl)
	}
}
