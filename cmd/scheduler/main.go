// Command scheduler runs notionsync's scheduling loop (proactive token
// refresh, periodic syncs; one replica acts at a time) and its control
// plane: OAuth connect, the admin API, asynqmon, webhooks. Configuration
// comes from NOTIONSYNC_* environment variables (scheduler --help-env).
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
		fmt.Println("scheduler: runs notionsync's scheduler and control plane. Configuration (environment):")
		config.WriteHelp(os.Stdout, config.SchedulerReference())
		return
	}
	cfg, err := config.LoadScheduler()
	if err != nil {
		fmt.Fprintln(os.Stderr, "scheduler: configuration:\n"+err.Error())
		os.Exit(2)
	}
	log, err := app.NewLogger(cfg.Log)
	if err != nil {
		fmt.Fprintln(os.Stderr, "scheduler:", err)
		os.Exit(2)
	}
	defer log.Sync()
	ctx, stop := app.SignalContext(context.Background(), log)
	defer stop()
	if err := app.RunScheduler(ctx, cfg, log); err != nil {
		log.Error("scheduler failed", app.ErrField(err))
		os.Exit(1)
	}
}
