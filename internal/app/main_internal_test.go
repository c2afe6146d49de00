package app

import (
	"strings"
	"testing"

	"github.com/notionsync/notionsync/config"
)

// --help is a short usage, --help-env the variables under one header, and
// -version the build; each exits 0 without running anything.
func TestHandleArgs(t *testing.T) {
	t.Parallel()
	run := func(args ...string) (code int, exit bool, stdout, stderr string) {
		var o, e strings.Builder
		code, exit = handleArgs("worker", "runs jobs", config.WorkerReference(), args, &o, &e)
		return code, exit, o.String(), e.String()
	}
	if _, exit, _, _ := run(); exit {
		t.Fatal("no arguments: the process must run")
	}

	code, exit, help, _ := run("--help")
	if code != 0 || !exit || !strings.Contains(help, "Usage: worker [--help-env | -version]") ||
		strings.Contains(help, "NOTIONSYNC_REDIS_URL (") {
		t.Fatalf("--help: %d %v\n%s", code, exit, help)
	}
	for _, alias := range []string{"-h", "help", "-help"} {
		if _, _, out, _ := run(alias); out != help {
			t.Errorf("%s differs from --help:\n%s", alias, out)
		}
	}

	code, exit, env, _ := run("--help-env")
	if code != 0 || !exit || env == help || !strings.Contains(env, "NOTIONSYNC_REDIS_URL (URL, default") {
		t.Fatalf("--help-env: %d %v\n%s", code, exit, env)
	}
	if n := strings.Count(env, "nvironment variables"); n != 1 {
		t.Fatalf("--help-env says %q %d times (a doubled header):\n%s", "environment variables", n, env[:min(len(env), 300)])
	}

	for _, v := range []string{"-version", "--version", "version"} {
		code, exit, out, _ := run(v)
		if code != 0 || !exit || !strings.HasPrefix(out, "worker ") || !strings.Contains(out, "go1.") || strings.Count(out, "\n") != 1 {
			t.Errorf("%s: %d %v %q", v, code, exit, out)
		}
	}

	if code, exit, _, stderr := run("--nope"); code != 2 || !exit || !strings.Contains(stderr, "--help-env") {
		t.Errorf("unknown argument: %d %v %q", code, exit, stderr)
	}
	if code, exit, _, _ := run("-version", "x"); code != 2 || !exit {
		t.Errorf("two arguments: %d %v", code, exit)
	}
}
