package app

import (
	"context"
	"fmt"
	"os"
	"strings"

	"go.uber.org/zap"

	"github.com/notionsync/notionsync/config"
)

// Main is the body of cmd/worker and cmd/scheduler: --help-env, load the
// configuration (exit 2 with every problem named), build the logger, warn
// about NOTIONSYNC_* variables nobody reads (typos), run until the first
// SIGINT/SIGTERM (a second one forces exit), exit 1 on failure.
func Main[C any](name, about string, ref []config.Var, load func() (*C, error), logCfg func(*C) config.Log,
	run func(context.Context, *C, *zap.Logger) error) {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "--help-env", "-h", "--help", "help":
			fmt.Printf("%s: %s\n\nConfiguration (environment variables):\n\n", name, about)
			_ = config.WriteHelp(os.Stdout, ref)
			return
		default:
			fmt.Fprintf(os.Stderr, "%s: unknown argument %q (configuration comes from the environment; see %s --help-env)\n", name, os.Args[1], name)
			os.Exit(2)
		}
	}
	cfg, err := load()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: configuration:\n%s\n", name, indent(err.Error()))
		os.Exit(2)
	}
	log, err := NewLogger(logCfg(cfg))
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(2)
	}
	defer func() { _ = log.Sync() }()
	SetRedisLogger(log)
	if unknown := config.UnknownVars(os.Environ()); len(unknown) > 0 {
		log.Warn("environment variables with the NOTIONSYNC_ prefix that nothing reads (typos?)", zap.Strings("names", unknown))
	}
	ctx, stop := SignalContext(context.Background(), log)
	defer stop()
	if err := run(ctx, cfg, log); err != nil {
		log.Error(name+" failed", zap.Error(err))
		stop()
		_ = log.Sync()
		os.Exit(1)
	}
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}
