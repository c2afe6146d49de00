package app

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"go.uber.org/zap"

	"github.com/notionsync/notionsync/config"
	"github.com/notionsync/notionsync/internal/buildinfo"
)

// Main is the body of cmd/worker and cmd/scheduler: --help, --help-env and
// -version (see handleArgs), load the configuration (exit 2 with every
// problem named), build the logger, warn about NOTIONSYNC_* variables
// nobody reads (typos), run until the first SIGINT/SIGTERM (a second one
// forces exit), exit 1 on failure.
func Main[C any](name, about string, ref []config.Var, load func() (*C, error), logCfg func(*C) config.Log,
	run func(context.Context, *C, *zap.Logger) error) {
	if code, exit := handleArgs(name, about, ref, os.Args[1:], os.Stdout, os.Stderr); exit {
		os.Exit(code)
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

// handleArgs answers the only arguments the binaries take (their
// configuration is the environment): --help (-h, help) a short usage,
// --help-env the variables, -version (--version, version) the build. It
// reports exit=true with the exit code when the process should end.
func handleArgs(name, about string, ref []config.Var, args []string, stdout, stderr io.Writer) (code int, exit bool) {
	if len(args) == 0 {
		return 0, false
	}
	switch arg := args[0]; {
	case len(args) > 1:
		fmt.Fprintf(stderr, "%s: unexpected arguments %q (see %s --help)\n", name, args, name)
		return 2, true
	case arg == "--help" || arg == "-help" || arg == "-h" || arg == "help":
		fmt.Fprintf(stdout, "%s: %s\n\n"+
			"Usage: %s [--help-env | -version]\n\n"+
			"%s takes no flags: its configuration comes from NOTIONSYNC_* environment variables\n"+
			"(docs/configuration.md in the repository has the same reference).\n\n"+
			"  --help-env   list the configuration variables, their defaults and what they do\n"+
			"  -version     print the module version, commit and Go version of this binary\n",
			name, about, name, name)
		return 0, true
	case arg == "--help-env" || arg == "-help-env":
		fmt.Fprintf(stdout, "%s: %s\n\n", name, about)
		if err := config.WriteHelp(stdout, ref); err != nil {
			return 1, true
		}
		return 0, true
	case buildinfo.IsVersionArg(arg):
		fmt.Fprintln(stdout, buildinfo.String(name))
		return 0, true
	default:
		fmt.Fprintf(stderr, "%s: unknown argument %q (configuration comes from the environment; see %s --help-env)\n", name, arg, name)
		return 2, true
	}
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}
