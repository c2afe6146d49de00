// Command notion-sandbox serves a local Notion: the OAuth endpoints (an
// authorize page that auto-approves, a token endpoint that rotates) and the
// data API notionsync uses, over a seeded, deterministic workspace, with an
// admin API under /_sandbox/ to edit pages, revoke the connection and inject
// faults while notionsync runs. It is internal/notionfake, the fake the tests
// use, behind a listener; see package internal/sandbox.
//
// It prints, once listening, a line
//
//	notion-sandbox listening on http://ADDR (client_id=ID, workspace=WS)
//
// and stops gracefully on SIGINT or SIGTERM (exit status 0). Run it with -h
// for the flags; each has a NOTION_SANDBOX_* variable. -version prints the
// build (module version, commit, Go version).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"go.uber.org/zap"

	"github.com/notionsync/notionsync/internal/buildinfo"
	"github.com/notionsync/notionsync/internal/sandbox"
)

func main() {
	os.Exit(run())
}

func run() int {
	// -version is not one of the sandbox's flags: those each have a
	// NOTION_SANDBOX_* variable, and a version variable would mean nothing.
	if len(os.Args) == 2 && buildinfo.IsVersionArg(os.Args[1]) {
		fmt.Println(buildinfo.String("notion-sandbox"))
		return 0
	}
	cfg, err := sandbox.ParseFlags(os.Args[1:], os.Getenv, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2 // reported by ParseFlags
	}
	log, err := sandbox.NewLogger(cfg.LogLevel)
	if err != nil {
		fmt.Fprintln(os.Stderr, "notion-sandbox:", err)
		return 1
	}
	defer func() { _ = log.Sync() }()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	sb, err := sandbox.New(cfg, log)
	if err != nil {
		log.Error("notion-sandbox: build", zap.Error(err))
		return 1
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", cfg.Addr)
	if err != nil {
		log.Error("notion-sandbox: listen", zap.String("addr", cfg.Addr), zap.Error(err))
		return 1
	}
	if err := sb.Serve(ctx, ln, os.Stdout); err != nil {
		log.Error("notion-sandbox: stopped", zap.Error(err))
		return 1
	}
	log.Info("notion-sandbox: stopped")
	return 0
}
