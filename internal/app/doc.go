// Package app builds notionsync's processes from configuration: the
// components both binaries share (Redis client, token store and source,
// Notion OAuth client, metrics, health endpoints), the worker (asynq server
// running every job handler), and the scheduler (leader-elected scheduling
// loop plus the HTTP control plane). cmd/worker and cmd/scheduler only load
// configuration, install signal handling and call Run.
package app
