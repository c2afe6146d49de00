// Package config turns environment variables into the typed configuration of
// the notionsync binaries. It is the only place that reads NOTIONSYNC_*
// variables; the components take plain values from the structs it returns.
//
// # What it owns
//
//   - The groups of settings (Redis, Tokens, Notion, Sync, Log, Pool, Control)
//     and the two binaries' configurations built from them: Worker and
//     Scheduler. Every field carries its variable name, its default and a
//     one-line description in struct tags; the field's doc comment states the
//     default too.
//
//   - Loading: LoadWorker / LoadScheduler read the process environment;
//     LoadWorkerFrom / LoadSchedulerFrom read through a lookup function, so
//     tests never touch the process environment and can run in parallel.
//
//   - Validation: a load either returns a configuration that passed every
//     check or an error joining all problems (see Errors below).
//
//   - Secrets: Secret (client secret, admin token, webhook secrets), URL
//     (connection URLs that may carry a password) and KeyRing (token
//     encryption keys) print as "[redacted]" (a URL prints with its password
//     masked) through fmt (%v, %+v, %#v, %s, %q, ...), encoding/json and
//     log/slog. Error messages never contain a secret value: problems with a
//     secret name the variable and the rule, never the value.
//
//   - The reference of every variable (Reference, WriteMarkdown, WriteHelp),
//     derived from the same struct tags, for the README and a --help-env flag.
//
//   - Redis.UniversalOptions, which turns the Redis settings into go-redis
//     options for a single node (redis:// or rediss://) or Sentinel.
//
// # Errors
//
// A failed load returns an error joining (errors.Join) one *VarError per
// problem, all problems at once; Problems lists them. Each names the variable
// and says what is wrong:
//
//	NOTIONSYNC_REFRESH_LOCK_TTL=15s: must be more than twice NOTIONSYNC_TOKEN_CALL_TIMEOUT (10s), so the lock outlives the token call
//	NOTIONSYNC_WORKER_CONCURRENCY="abc": not an integer
//	NOTIONSYNC_ADMIN_TOKEN: must be at least 16 characters
//
// Parse errors of github.com/caarlos0/env/v11 are rewritten into this form.
// The value is shown only when it is not secret; URLs that may carry a
// password are shown masked or not at all.
//
// # Concurrency
//
// The package has no mutable package-level state. The Load functions,
// Reference, WriteMarkdown, WriteHelp, UnknownVars, ParseKeyRing and
// ParseQueueWeights are safe to call concurrently (a lookup function passed to
// a Load function is called from the calling goroutine only). A loaded
// Worker or Scheduler is a plain value: share it read-only between goroutines
// or copy it; do not mutate it while others read it. KeyRing, Secret and URL
// are immutable; KeyRing hands out copies of its key material.
package config
