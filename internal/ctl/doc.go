// Package ctl is notionsyncctl, the operators' command line client of the
// control plane's admin JSON API (package internal/control). It covers the
// same connection operations as the API: list, show, events, pause, resume,
// sync, refresh, disconnect and import, plus connect-url, which prints the
// link that connects a workspace, and reconnect-link, which mints the signed
// link that re-authorizes an existing connection.
//
// One command talks to Redis instead of the API: "redis migrate-keys" moves
// a deployment's data to the sharded key layout (package
// internal/keymigrate), reading the services' NOTIONSYNC_REDIS_* variables.
//
// The package owns the command line surface only: argument parsing, the
// HTTP calls, and rendering (tables with text/tabwriter, key: value lines,
// or the server's JSON with -output json). It keeps no state between runs
// and talks to nothing but the control server. cmd/notionsyncctl is a thin
// main around Run.
//
// # Configuration
//
// The server comes from -server or NOTIONSYNC_CONTROL_URL (default
// http://localhost:8080), the admin token from NOTIONSYNC_ADMIN_TOKEN or
// -token. Prefer the environment for the token: command lines are visible
// to every user of the machine (ps), so -token prints a warning. Global
// flags are accepted before or after the command name.
//
// # Secrets
//
// Tokens never appear on the command line of import (it reads the pair as
// JSON from stdin or -file), in output, or in error messages: messages about
// a malformed token pair name fields, never values. Redirects are not
// followed, so the admin token is only ever sent to -server.
//
// # Exit status
//
// ExitOK (0) on success; ExitFailure (1) when the command failed: an error
// answer of the API (its message is printed), an unreachable or silent
// server, or a declined confirmation; ExitUsage (2) for a usage error: an
// unknown command or flag, a missing or malformed argument, a missing admin
// token, or an unreadable token pair.
//
// # Concurrency
//
// Run has no shared state: any number of Runs may execute concurrently
// (each with its own Env). An Env's writers are used by one Run only.
package ctl
