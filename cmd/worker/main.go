// Command worker runs notionsync's sync and token jobs from the asynq
// queues in Redis. Scale it by running more of them. Configuration comes
// from NOTIONSYNC_* environment variables (worker --help-env lists them).
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/notionsync/notionsync/config"
	"github.com/notionsync/notionsync/internal/app"
)

func main() {
	if len(os.Args) > 1 && (os.Args[1] == "--help-env" || os.Args[1] == "-h" || os.Args[1] == "--help") {
		fmt.Println("worker: runs notionsync's jobs. Configuration (environment):")
		config.WriteHelp(os.Stdout, config.WorkerReference())
		return
	}
	cfg, err := config.LoadWorker()
	if err != nil {
		fmt.Fprintln(os.Stderr, "worker: configuration:\n"+err.Error())
		os.Exit(2)
	}
	log, err := app.NewLogger(cfg.Log)
	if err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(2)
	}
	defer log.Sync()
	ctx, stop := app.SignalContext(context.Background(), log)
	defer stop()
	if err := app.RunWorker(ctx, cfg, log); err != nil {
		log.Error("worker failed", app.ErrField(err))
		os.Exit(1)
	}
}
