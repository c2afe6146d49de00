// Command notionsyncctl manages notionsync connections through the control
// plane's admin API: list, show, events, pause, resume, sync, refresh,
// disconnect, import and connect-url; "redis migrate-keys" talks to Redis
// itself (NOTIONSYNC_REDIS_*) to move data to the sharded key layout. Run
// "notionsyncctl help" for usage; the logic lives in internal/ctl.
//
// The server comes from NOTIONSYNC_CONTROL_URL (or -server), the admin token
// from NOTIONSYNC_ADMIN_TOKEN. Exit status: 0 success, 1 the command failed,
// 2 usage error.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/notionsync/notionsync/internal/ctl"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := ctl.Run(ctx, os.Args[1:], ctl.OSEnv())
	stop()
	os.Exit(code)
}
