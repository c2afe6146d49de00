package ctl

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/notionsync/notionsync/internal/buildinfo"
)

// Exit statuses of Run.
const (
	ExitOK      = 0 // the command succeeded
	ExitFailure = 1 // the API refused, the server was unreachable, or the operator declined
	ExitUsage   = 2 // bad command line, missing admin token, unreadable input
)

// Environment variables Run reads through Env.Getenv.
const (
	EnvServer = "NOTIONSYNC_CONTROL_URL"
	EnvToken  = "NOTIONSYNC_ADMIN_TOKEN"
)

// Defaults of the global flags.
const (
	DefaultServer  = "http://localhost:8080"
	DefaultTimeout = 30 * time.Second
	// DefaultWaitTimeout replaces DefaultTimeout for "refresh -wait" (the
	// server waits up to a minute for Notion) unless -timeout is given.
	DefaultWaitTimeout = 90 * time.Second
)

const progName = "notionsyncctl"

// Env is what a Run reads and writes besides the network. Zero fields get
// the documented defaults, so Env{} is a quiet, non-interactive run.
type Env struct {
	// Stdin is read by import (the token pair) and by the confirmation
	// prompt of disconnect. Default: empty.
	Stdin io.Reader
	// Stdout receives results, Stderr messages, warnings and prompts.
	// Default: io.Discard.
	Stdout, Stderr io.Writer
	// Getenv reads the environment. Default: an empty environment.
	Getenv func(key string) string
	// StdinIsTerminal reports that Stdin is an interactive terminal:
	// disconnect then asks for confirmation instead of requiring -yes.
	StdinIsTerminal bool
	// Now is the clock relative times ("in 42m") are computed with.
	// Default time.Now.
	Now func() time.Time
	// Transport carries the HTTP requests. Default: a clone of
	// http.DefaultTransport whose idle connections are closed when Run
	// returns.
	Transport http.RoundTripper
}

// OSEnv returns the Env of the running process: its standard streams and
// environment, and whether stdin is a terminal.
func OSEnv() Env {
	return Env{
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
		Getenv:          os.Getenv,
		StdinIsTerminal: isTerminal(os.Stdin),
		Now:             time.Now,
	}
}

func (e Env) withDefaults() Env {
	if e.Stdin == nil {
		e.Stdin = strings.NewReader("")
	}
	if e.Stdout == nil {
		e.Stdout = io.Discard
	}
	if e.Stderr == nil {
		e.Stderr = io.Discard
	}
	if e.Getenv == nil {
		e.Getenv = func(string) string { return "" }
	}
	if e.Now == nil {
		e.Now = time.Now
	}
	return e
}

// usageError is a command line mistake: Run prints it with a usage hint and
// returns ExitUsage.
type usageError struct {
	cmd string // "" for the global command line
	msg string
}

func (e *usageError) Error() string { return e.msg }

func usagef(cmd, format string, args ...any) error {
	return &usageError{cmd: cmd, msg: fmt.Sprintf(format, args...)}
}

// errDeclined is returned when the operator does not confirm.
var errDeclined = errors.New("aborted: not confirmed")

// globals are the flags every command accepts.
type globals struct {
	server    string
	token     string
	output    string
	timeout   time.Duration
	tokenFlag bool // the token came from -token
	timeoutOK bool // -timeout was given
}

// register defines the global flags on fs with their current values as
// defaults, so that a command's flag set does not reset what the global
// command line set.
func (g *globals) register(fs *flag.FlagSet) {
	fs.StringVar(&g.server, "server", g.server, "control plane base `URL` (env "+EnvServer+")")
	fs.StringVar(&g.token, "token", g.token, "admin `token` (env "+EnvToken+"; prefer the env: flags show in ps)")
	fs.StringVar(&g.output, "output", g.output, "output `format`: table or json")
	fs.DurationVar(&g.timeout, "timeout", g.timeout, "time limit of the command (default 30s; 90s for refresh -wait)")
}

// noteSet records which global flags fs set.
func (g *globals) noteSet(fs *flag.FlagSet) {
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "token":
			g.tokenFlag = true
		case "timeout":
			g.timeoutOK = true
		}
	})
}

// Run runs the command line args (without the program name) and returns the
// exit status. It never calls os.Exit and installs no signal handler: cancel
// ctx to interrupt it.
func Run(ctx context.Context, args []string, env Env) int {
	env = env.withDefaults()
	tr := env.Transport
	if tr == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		defer t.CloseIdleConnections()
		tr = t
	}
	err := run(ctx, args, env, tr)
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, flag.ErrHelp):
		return ExitOK
	}
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(env.Stderr, "%s: %s\n", progName, ue.msg)
		if c := lookup(ue.cmd); c != nil {
			fmt.Fprintf(env.Stderr, "usage: %s %s %s\nRun '%s help %s' for details.\n", progName, c.name, c.synopsis, progName, c.name)
		} else {
			fmt.Fprintf(env.Stderr, "Run '%s help' for usage.\n", progName)
		}
		return ExitUsage
	}
	fmt.Fprintf(env.Stderr, "%s: %s\n", progName, err)
	return ExitFailure
}

func run(ctx context.Context, args []string, env Env, tr http.RoundTripper) error {
	g := &globals{
		server:  cmp.Or(env.Getenv(EnvServer), DefaultServer),
		token:   env.Getenv(EnvToken),
		output:  "table",
		timeout: DefaultTimeout,
	}
	gfs := flag.NewFlagSet(progName, flag.ContinueOnError)
	gfs.SetOutput(io.Discard)
	g.register(gfs)
	version := gfs.Bool("version", false, "print the build's version and exit")
	if err := gfs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			writeUsage(env.Stdout)
			return err
		}
		return usagef("", "%v", err)
	}
	g.noteSet(gfs)
	rest := gfs.Args()
	if *version || len(rest) == 1 && rest[0] == "version" {
		fmt.Fprintln(env.Stdout, buildinfo.String(progName))
		return nil
	}
	if len(rest) == 0 {
		writeUsage(env.Stderr)
		return usagef("", "no command given")
	}
	name, rest := rest[0], rest[1:]
	if name == "help" {
		return help(env.Stdout, rest)
	}
	c := lookup(name)
	if c == nil {
		return usagef("", "unknown command %q", name)
	}

	fs := flag.NewFlagSet(progName+" "+c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	g.register(fs)
	exec := c.setup(fs)
	pos, err := parseInterspersed(fs, rest)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			writeCommandUsage(env.Stdout, c)
			return err
		}
		return usagef(c.name, "%v", err)
	}
	g.noteSet(fs)

	base, err := parseServer(g.server)
	if err != nil {
		return usagef(c.name, "%v", err)
	}
	if g.output != "table" && g.output != "json" {
		return usagef(c.name, "-output must be table or json, not %q", g.output)
	}
	if g.timeout <= 0 {
		return usagef(c.name, "-timeout must be positive")
	}
	if g.tokenFlag {
		fmt.Fprintf(env.Stderr, "%s: warning: -token is visible to other users of this machine (ps, shell history); prefer %s\n", progName, EnvToken)
	}
	r := &runner{
		env: env, g: g, cmd: c.name, base: base,
		http: &http.Client{
			Transport: tr,
			// The admin token goes to -server and nowhere else; a redirect
			// is reported instead of followed.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	return exec(ctx, r, pos)
}

// parseInterspersed parses fs over args, allowing flags after positional
// arguments ("show c1 -output json"). Everything after "--" is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// parseServer checks -server and returns it without a trailing slash.
func parseServer(raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimRight(raw, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("-server (or %s) must be an http(s) URL such as %s", EnvServer, DefaultServer)
	}
	return u, nil
}

func help(w io.Writer, args []string) error {
	if len(args) == 0 {
		writeUsage(w)
		return nil
	}
	c := lookup(args[0])
	if c == nil {
		return usagef("", "unknown command %q", args[0])
	}
	writeCommandUsage(w, c)
	return nil
}

func writeUsage(w io.Writer) {
	fmt.Fprintf(w, `Usage: %[1]s [global flags] <command> [flags] [args]

%[1]s manages notionsync connections through the control plane's admin API.

Commands:
`, progName)
	for _, c := range commands {
		line := c.name + " " + c.synopsis
		if len(line) > 30 {
			fmt.Fprintf(w, "  %s\n  %-30s %s\n", line, "", c.summary)
		} else {
			fmt.Fprintf(w, "  %-30s %s\n", line, c.summary)
		}
	}
	fmt.Fprintf(w, `
Global flags (accepted before or after the command):
  -server URL    control plane base URL (env %[1]s; default %[3]s)
  -token TOKEN   admin token (env %[2]s; prefer the env: command lines show in ps)
  -output FMT    table (default) or json
  -timeout D     time limit of the command (default 30s; 90s for refresh -wait)
  -version       print the module version, commit and Go version, and exit

Exit status, for scripts:
  0  success, including pause of a paused and resume of an active connection
     (a note on stderr says nothing changed)
  1  the command failed: API refusal (unknown connection, wrong status such as
     sync of a paused one), server unreachable or timed out, not confirmed
  2  usage error: bad arguments, no admin token, unreadable input
Run '%[4]s help <command>' for a command's flags.
`, EnvServer, EnvToken, DefaultServer, progName)
}

func writeCommandUsage(w io.Writer, c *command) {
	fmt.Fprintf(w, "Usage: %s %s %s\n\n%s\n", progName, c.name, c.synopsis, c.help)
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	c.setup(fs)
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		fmt.Fprintln(w, "\nFlags:")
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
	fmt.Fprintf(w, "\nGlobal flags: -server, -token, -output, -timeout (see '%s help').\n", progName)
}
