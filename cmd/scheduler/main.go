// Command scheduler runs notionsync's scheduling loop (proactive token
// refresh, periodic syncs; one replica acts at a time) and its control
// plane: OAuth connect, the admin API, asynqmon, webhooks. Configuration
// comes from NOTIONSYNC_* environment variables (scheduler --help-env).
package main

import (
	"github.com/notionsync/notionsync/config"
	"github.com/notionsync/notionsync/internal/app"
)

func main() {
	app.Main("scheduler", "runs notionsync's scheduler and control plane", config.SchedulerReference(),
		config.LoadScheduler, func(c *config.Scheduler) config.Log { return c.Log }, app.RunScheduler)
}
