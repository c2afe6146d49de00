package pgsink_test

import (
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	_ "github.com/notionsync/notionsync/sync/sink/blobdrivers" // s3://, as the worker links it
	"github.com/notionsync/notionsync/sync/sink/pgsink"
	"github.com/notionsync/notionsync/sync/sink/sinktest"
)

// The s3:// driver (package blobdrivers, which the worker links), against
// an in-process S3 (gofakes3): the bytes go to the bucket through the AWS
// SDK the way they go to S3 or an S3-compatible store, and the file suite
// (puts, reads, the key index, usage, garbage collection that deletes
// blobs) holds there as with file://.
func TestFileGCOnS3(t *testing.T) {
	sinktest.RunFileGC(t, func(t *testing.T, now func() time.Time) sinktest.FileStore {
		return open(t, srv.NewDatabase(t), pgsink.Options{BlobURL: fakeS3(t), Now: now})
	})
}

// fakeS3 starts an in-process S3 with one bucket and returns its s3:// URL.
func fakeS3(t *testing.T) string {
	t.Helper()
	backend := s3mem.New()
	if err := backend.CreateBucket("blobs"); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(gofakes3.New(backend).Server())
	t.Cleanup(ts.Close)
	q := url.Values{
		"endpoint": {ts.URL}, "region": {"us-east-1"}, "use_path_style": {"true"}, "disable_https": {"true"},
		"anonymous": {"true"}, "request_checksum_calculation": {"when_required"}, "response_checksum_validation": {"when_required"},
	}
	return "s3://blobs?" + q.Encode()
}
