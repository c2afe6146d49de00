package files_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/notionsync/notionsync/internal/pgtest"
	"github.com/notionsync/notionsync/internal/redistest"
	"github.com/notionsync/notionsync/sync/files"
	"github.com/notionsync/notionsync/sync/sink/pgsink"
	"github.com/notionsync/notionsync/sync/sink/record"
)

// patternReader serves n bytes without holding them.
type patternReader struct{ n, i int64 }

func (r *patternReader) Read(p []byte) (int, error) {
	if r.i >= r.n {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), r.n-r.i)]
	for k := range p {
		p[k] = byte((r.i + int64(k)) * 7)
	}
	r.i += int64(len(p))
	return len(p), nil
}

// fileServer serves /<size>/<n>: size bytes whose content depends on n.
func fileServer(tb testing.TB) (*httptest.Server, string) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var size, n int64
		fmt.Sscanf(r.URL.Path, "/%d/%d", &size, &n)
		w.Header().Set("Content-Length", fmt.Sprint(size))
		_, _ = io.Copy(w, io.MultiReader(strings.NewReader(fmt.Sprintf("%016d", n)), &patternReader{n: size - 16}))
	}))
	tb.Cleanup(srv.Close)
	return srv, strings.TrimPrefix(srv.URL, "http://")
}

// BenchmarkDownloadIntoFileSink: files/s and bytes/s of 64 KiB files
// streamed into the file sink, 4 at a time.
//
//	go test -run '^$' -bench DownloadInto -benchtime 2000x ./sync/files/
func BenchmarkDownloadIntoFileSink(b *testing.B) { benchDownload(b, newStore(b), nil) }

// BenchmarkDownloadIntoFileSinkRedisQuota is BenchmarkDownloadIntoFileSink
// with the workers' shared quota (RedisQuota): two scripts per download.
func BenchmarkDownloadIntoFileSinkRedisQuota(b *testing.B) {
	rdb := redistest.StartTB(b, redistest.Options{}).Client()
	b.Cleanup(func() { rdb.Close() })
	q, err := files.NewRedisQuota(rdb, files.RedisQuotaConfig{KeyPrefix: "bench:"})
	if err != nil {
		b.Fatal(err)
	}
	benchDownload(b, newStore(b), q)
}

// BenchmarkDownloadIntoBlobStore is the same into a PostgreSQL sink with a
// fileblob store (a real PostgreSQL started by pgtest).
func BenchmarkDownloadIntoBlobStore(b *testing.B) {
	pg := pgtest.StartTB(b, pgtest.Options{})
	s, err := pgsink.Open(context.Background(), pg.NewDatabase(b), pgsink.Options{BlobURL: "file://" + b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	benchDownload(b, s, nil)
}

func benchDownload(b *testing.B, store record.FileStore, quota files.Quota) {
	srv, host := fileServer(b)
	d, err := files.New(files.Config{AllowedHosts: []string{host}, AllowHTTP: true, AllowPrivateAddresses: true, Quota: quota})
	if err != nil {
		b.Fatal(err)
	}
	const size = 64 << 10
	var next atomic.Int64
	b.SetBytes(size)
	start := time.Now()
	b.ResetTimer()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				u := fmt.Sprintf("%s/%d/%d", srv.URL, size, i)
				if _, err := d.Download(context.Background(), store, "c", "2b6f3c1a-0000-4000-8000-000000000001", files.Ref{Key: record.FileKey(u), URL: u, Name: "f.bin"}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "files/s")
}

// TestLargeFileStreamsInBoundedMemory streams a 200 MB file into the file
// sink and samples the heap meanwhile: it must stay far below the file's
// size (the bytes are never held whole).
//
//	go test -run LargeFileStreams -v ./sync/files/
func TestLargeFileStreamsInBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 200 MB")
	}
	srv, host := fileServer(t)
	store := newStore(t)
	d, err := files.New(files.Config{AllowedHosts: []string{host}, AllowHTTP: true, AllowPrivateAddresses: true})
	if err != nil {
		t.Fatal(err)
	}
	const size = 200 << 20
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak atomic.Uint64
	done := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	u := fmt.Sprintf("%s/%d/1", srv.URL, size)
	start := time.Now()
	l, err := d.Download(context.Background(), store, "c", "p", files.Ref{Key: record.FileKey(u), URL: u, Name: "big.bin"})
	close(done)
	<-sampled
	if err != nil || l.Size != size {
		t.Fatalf("%+v %v", l, err)
	}
	el := time.Since(start)
	growth := int64(peak.Load()) - int64(base.HeapInuse)
	t.Logf("200 MB in %v (%.0f MB/s); heap in use: base %d KiB, peak %d KiB (growth %d KiB)",
		el.Round(time.Millisecond), float64(size)/1e6/el.Seconds(), base.HeapInuse>>10, peak.Load()>>10, growth>>10)
	if growth > 16<<20 {
		t.Errorf("heap grew by %d MiB while streaming a 200 MiB file", growth>>20)
	}
}
