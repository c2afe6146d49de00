package main

import (
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// envRunMain makes the test binary run main instead of the tests, so that
// the tests see the real exit status, streams and terminal detection.
const envRunMain = "NOTIONSYNCCTL_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(envRunMain) == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// runMain runs the binary with args and the given environment (and nothing
// else of the test's environment); stdin is /dev/null.
func runMain(t *testing.T, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append([]string{envRunMain + "=1"}, env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatal(err)
	}
	return code, out.String(), errOut.String()
}

func TestExitStatus(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	env := []string{"NOTIONSYNC_CONTROL_URL=" + dead, "NOTIONSYNC_ADMIN_TOKEN=admin-token-0123456789"}

	for _, tc := range []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{[]string{"help"}, 0, "Usage: notionsyncctl", ""},
		{nil, 2, "", "no command given"},
		{[]string{"list", "-limit", "x"}, 2, "", "invalid value"},
		{[]string{"list"}, 1, "", "cannot reach the control server at " + dead},
		// stdin (/dev/null) is not a terminal: -yes is required.
		{[]string{"disconnect", "c1"}, 2, "", "pass -yes"},
	} {
		code, stdout, stderr := runMain(t, env, tc.args...)
		if code != tc.code || !strings.Contains(stdout, tc.stdout) || !strings.Contains(stderr, tc.stderr) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want %d, %q, %q", tc.args, code, stdout, stderr, tc.code, tc.stdout, tc.stderr)
		}
	}
}
