// Command worker runs notionsync's sync and token jobs from the asynq
// queues in Redis. Scale it by running more of them. Configuration comes
// from NOTIONSYNC_* environment variables (worker --help-env lists them).
package main

import (
	"github.com/notionsync/notionsync/config"
	"github.com/notionsync/notionsync/internal/app"
	// s3://, gs://, azblob:// for NOTIONSYNC_BLOB_URL. Registered here, not
	// in package app, so that test binaries (built with -race in CI) do not
	// link the cloud SDKs.
	_ "github.com/notionsync/notionsync/sync/sink/blobdrivers"
)

func main() {
	app.Main("worker", "runs notionsync's page, database and token jobs", config.WorkerReference(),
		config.LoadWorker, func(c *config.Worker) config.Log { return c.Log }, app.RunWorker)
}
