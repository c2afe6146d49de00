package sandbox

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap/zapcore"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func noEnv(string) string { return "" }

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestParseFlagsDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := ParseFlags(nil, noEnv, io.Discard)
	if err != nil {
		t.Fatalf("ParseFlags: %v", err)
	}
	if want := DefaultConfig(); !reflect.DeepEqual(cfg, want) {
		t.Fatalf("defaults:\n got %+v\nwant %+v", cfg, want)
	}
	if cfg.Addr != "127.0.0.1:8787" || cfg.WorkspaceID != "sandbox-ws" || cfg.ClientID != "fake-client-id" {
		t.Fatalf("documented defaults changed: %+v", cfg)
	}
}

func TestParseFlagsEveryFlag(t *testing.T) {
	t.Parallel()
	args := []string{
		"-addr", "127.0.0.1:9999", "-client-id", "cid", "-client-secret", "csecret",
		"-redirect-uri", "http://localhost:8080/oauth/callback,http://a/cb", "-redirect-uri", "http://b/cb",
		"-workspace", "ws-1", "-pages", "7", "-nested-pages", "2", "-blocks-per-page", "4",
		"-block-depth", "2", "-databases", "3", "-rows", "5", "-blocks-per-row", "1", "-seed", "42",
		"-unknown-blocks", "-history", "1h", "-access-token-lifetime", "30s", "-expires-in", "20s",
		"-rate-limit", "180", "-latency", "15ms", "-fail-rate", "0.25", "-log-level", "debug",
		"-shutdown-timeout", "2s",
	}
	cfg, err := ParseFlags(args, noEnv, io.Discard)
	if err != nil {
		t.Fatalf("ParseFlags: %v", err)
	}
	want := DefaultConfig()
	want.Addr, want.ClientID, want.ClientSecret = "127.0.0.1:9999", "cid", "csecret"
	want.RedirectURIs = []string{"http://localhost:8080/oauth/callback", "http://a/cb", "http://b/cb"}
	want.WorkspaceID = "ws-1"
	want.Seed.Pages, want.Seed.NestedPages, want.Seed.BlocksPerPage, want.Seed.BlockDepth = 7, 2, 4, 2
	want.Seed.Databases, want.Seed.RowsPerDatabase, want.Seed.BlocksPerRow, want.Seed.Seed = 3, 5, 1, 42
	want.Seed.UnknownBlocks, want.Seed.History = true, time.Hour
	want.AccessTokenLifetime, want.ExpiresIn = 30*time.Second, 20*time.Second
	want.RateLimit, want.Latency, want.FailRate = 180, 15*time.Millisecond, 0.25
	want.LogLevel, want.ShutdownTimeout = zapcore.DebugLevel, 2*time.Second
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("config:\n got %+v\nwant %+v", cfg, want)
	}
}

func TestParseFlagsEnvironment(t *testing.T) {
	t.Parallel()
	env := envOf(map[string]string{
		"NOTION_SANDBOX_PAGES":          "3",
		"NOTION_SANDBOX_CLIENT_SECRET":  "from-env",
		"NOTION_SANDBOX_UNKNOWN_BLOCKS": "true",
		"NOTION_SANDBOX_RATE_LIMIT":     "60",
		"NOTION_SANDBOX_REDIRECT_URI":   "http://env/cb",
		"NOTION_SANDBOX_LOG_LEVEL":      "warn",
	})
	cfg, err := ParseFlags([]string{"-rate-limit", "90"}, env, io.Discard)
	if err != nil {
		t.Fatalf("ParseFlags: %v", err)
	}
	if cfg.Seed.Pages != 3 || cfg.ClientSecret != "from-env" || !cfg.Seed.UnknownBlocks || cfg.LogLevel != zapcore.WarnLevel {
		t.Errorf("environment not applied: %+v", cfg)
	}
	if cfg.RateLimit != 90 {
		t.Errorf("RateLimit = %d, want the flag's 90 over the variable's 60", cfg.RateLimit)
	}
	if !reflect.DeepEqual(cfg.RedirectURIs, []string{"http://env/cb"}) {
		t.Errorf("RedirectURIs = %q, want the variable's", cfg.RedirectURIs)
	}

	// A -redirect-uri on the command line replaces the variable's list.
	cfg, err = ParseFlags([]string{"-redirect-uri", "http://flag/cb"}, env, io.Discard)
	if err != nil {
		t.Fatalf("ParseFlags: %v", err)
	}
	if !reflect.DeepEqual(cfg.RedirectURIs, []string{"http://flag/cb"}) {
		t.Errorf("RedirectURIs = %q, want only the flag's", cfg.RedirectURIs)
	}
}

func TestParseFlagsErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantOut string
	}{
		{"unknown flag", []string{"-nope"}, nil, "flag provided but not defined: -nope"},
		{"bad int", []string{"-pages", "many"}, nil, "invalid value \"many\" for flag -pages"},
		{"positional", []string{"extra"}, nil, "unexpected arguments"},
		{"fail rate above 1", []string{"-fail-rate", "1.5"}, nil, "-fail-rate 1.5 outside 0..1"},
		{"fail rate NaN", []string{"-fail-rate", "NaN"}, nil, "-fail-rate NaN outside 0..1"},
		{"negative pages", []string{"-pages", "-1"}, nil, "-pages -1 outside"},
		{"deep blocks", []string{"-block-depth", "9"}, nil, "-block-depth 9 outside 0..8"},
		{"too many rows", []string{"-databases", "1000", "-rows", "1000"}, nil, "more than 100000"},
		{"negative lifetime", []string{"-access-token-lifetime", "-1s"}, nil, "-access-token-lifetime -1s is negative"},
		{"negative expires_in", []string{"-expires-in", "-1s"}, nil, "-expires-in -1s is negative"},
		{"negative rate limit", []string{"-rate-limit", "-5"}, nil, "-rate-limit -5 is negative"},
		{"huge latency", []string{"-latency", "1h"}, nil, "-latency 1h0m0s outside"},
		{"empty workspace", []string{"-workspace", ""}, nil, "-workspace is empty"},
		{"empty secret", []string{"-client-secret", ""}, nil, "-client-secret is empty"},
		{"relative redirect", []string{"-redirect-uri", "/cb"}, nil, "-redirect-uri \"/cb\" is not an absolute URI"},
		{"bad log level", []string{"-log-level", "loud"}, nil, "invalid value \"loud\" for flag -log-level"},
		{"bad env", nil, map[string]string{"NOTION_SANDBOX_HISTORY": "forever"}, "NOTION_SANDBOX_HISTORY: "},
		{"two errors", []string{"-pages", "-1", "-rate-limit", "-1"}, nil, "-pages -1 outside 0..100000; -rate-limit -1 is negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			_, err := ParseFlags(tt.args, envOf(tt.env), &out)
			if err == nil {
				t.Fatal("ParseFlags succeeded")
			}
			if !strings.Contains(out.String(), tt.wantOut) {
				t.Fatalf("output %q does not contain %q", out.String(), tt.wantOut)
			}
		})
	}
}

func TestParseFlagsHelp(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	_, err := ParseFlags([]string{"-h"}, noEnv, &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("err = %v, want flag.ErrHelp", err)
	}
	for _, want := range []string{"Usage: notion-sandbox", "NOTION_SANDBOX_RATE_LIMIT", "-access-token-lifetime", "-fail-rate",
		"GET /_sandbox/ lists it", "POST   /_sandbox/faults", "DELETE /_sandbox/poison"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("usage lacks %q", want)
		}
	}
}

func TestEnvName(t *testing.T) {
	t.Parallel()
	if got := EnvName("access-token-lifetime"); got != "NOTION_SANDBOX_ACCESS_TOKEN_LIFETIME" {
		t.Fatalf("EnvName = %q", got)
	}
}

// Flags and variables together; the command line wins.
func ExampleParseFlags() {
	env := map[string]string{"NOTION_SANDBOX_PAGES": "50", "NOTION_SANDBOX_RATE_LIMIT": "180"}
	cfg, err := ParseFlags([]string{"-rate-limit", "60", "-access-token-lifetime", "2m"},
		func(k string) string { return env[k] }, os.Stderr)
	if err != nil {
		return
	}
	fmt.Println(cfg.Addr, cfg.WorkspaceID, cfg.Seed.Pages, cfg.RateLimit, cfg.AccessTokenLifetime)
	// Output: 127.0.0.1:8787 sandbox-ws 50 60 2m0s
}
