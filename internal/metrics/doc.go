// Package metrics turns notionsync's hooks into Prometheus metrics and
// reads the state kept in Redis at scrape time.
//
// The core packages import no metrics library: tokens, notionclient, jobs,
// control and schedule report events through hooks (tokens.Hooks,
// notionclient.Observer, jobs.Hooks, control.Hooks, schedule.Hooks). This
// package owns the translation: the metric names, their labels and buckets,
// and the collectors that read Redis. The programs in cmd/ wire it up.
//
// # Wiring
//
//	reg := prometheus.NewRegistry()
//	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
//	m, err := metrics.New(reg)
//	rh, err := metrics.NewRedisHook(reg, keyPrefix) // rdb.AddHook(rh): redis_round_trips_total{component}, redis_commands_total{component}
//	...
//	tokenCfg.Hooks = m.TokenHooks(tokenCfg.Hooks)       // keeps the caller's own hooks
//	notionCfg.Observer = m.NotionObserver()
//	jobsCfg.Hooks = m.JobHooks(jobsCfg.Hooks)
//	controlCfg.Hooks = m.ControlHooks(controlCfg.Hooks) // scheduler only
//	schedCfg.Hooks = m.ScheduleHooks(schedCfg.Hooks)    // scheduler only
//
//	// In one process only (the scheduler): both read shared Redis state.
//	states := jobs.NewStateReader(rdb, keyPrefix)
//	cc, err := metrics.NewConnectionsCollector(store, states.States, 2000, metrics.WithLogger(log))
//	qc, err := metrics.NewQueueCollector(asynq.NewInspectorFromRedisClient(rdb), metrics.WithLogger(log))
//	reg.MustRegister(cc, qc)
//	// serve promhttp.HandlerFor(reg, promhttp.HandlerOpts{}) on /metrics
//
// # Event metrics (Metrics, namespace notionsync)
//
// Tokens: refreshes_total{outcome}, refresh_duration_seconds,
// needs_reauth_total{reason} (the invalid_grant verdicts by reason),
// refresh_lock_wait_seconds, refresh_lock_busy_total,
// token_endpoint_seconds{result} (result: success or the failure kind).
//
// Notion: notion_requests_total{method,status}, notion_request_seconds,
// notion_rate_limited_total{reason}, notion_backoff_seconds_total{reason}.
//
// Jobs: pages_synced_total, sweeps_total, sweep_objects_discovered_total,
// sweep_tasks_enqueued_total, sync_cursor_advances_total,
// objects_errored_total.
//
// Control plane: control_requests_total{route,status},
// control_request_seconds{route}, oauth_callbacks_total{outcome},
// notion_webhooks_total{outcome}, reauth_notifications_total{outcome},
// reauth_notification_attempts_total{outcome}.
//
// Scheduler: scheduler_leader, scheduler_leader_changes_total,
// scheduler_ticks_total, scheduler_tick_duration_seconds,
// scheduler_refreshes_due_total, scheduler_refreshes_enqueued_total,
// scheduler_sweeps_due_total, scheduler_sweeps_enqueued_total,
// scheduler_skipped_total, scheduler_discovered_total,
// scheduler_reaped_total, scheduler_connection_errors_total.
//
// Known label values start at zero. Labels hold only values fixed by code
// (outcomes, reasons, HTTP methods and codes, route patterns); anything that
// does not look like one is reported as "other". The event metrics never
// carry a connection id, and no metric ever carries a token, an error text
// or a Notion object id.
//
// # Scrape-time collectors
//
// ConnectionsCollector reads connections by status and the sync lag (now
// minus the jobs cursor) of active connections; per-connection series are
// capped (see its doc for the cost and why the cap exists).
// QueueCollector reads asynq's queue statistics under asynq's own metric
// names, so asynqmon's metrics view works. Both bound their work with a
// timeout, reuse a result for a few seconds, and report
// notionsync_scrape_collector_success and
// notionsync_scrape_collector_duration_seconds with a "collector" label; a
// failed collection emits only those two series (and a warning log), so one
// slow Redis does not fail the whole scrape.
//
// # Concurrency
//
// Metrics, the hooks it returns and both collectors are safe for concurrent
// use. The hooks are synchronous and cheap (an atomic add and a label
// lookup); they never block, never touch Redis and never call back into the
// component that invoked them. Collect may run concurrently (several
// scrapers); overlapping collections share one read of Redis.
package metrics
