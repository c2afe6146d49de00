package sandbox

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap/zapcore"

	"github.com/notionsync/notionsync/internal/notionfake"
)

// EnvPrefix prefixes the environment variable of every flag: -rate-limit is
// NOTION_SANDBOX_RATE_LIMIT. A flag on the command line wins over its variable.
const EnvPrefix = "NOTION_SANDBOX_"

// Limits of the seed flags, so that a typo cannot exhaust memory.
const (
	maxPages         = 100_000
	maxBlocksPerPage = 1_000
	maxBlockDepth    = 8
	maxDatabases     = 1_000
)

// Config configures a Sandbox. DefaultConfig holds the defaults; every field
// but Now and Rand has a flag (ParseFlags).
type Config struct {
	// Addr is the TCP address to listen on (-addr). Default 127.0.0.1:8787.
	Addr string
	// ClientID and ClientSecret are the OAuth client credentials the fake
	// accepts (-client-id, -client-secret). Defaults: notionfake's
	// DefaultClientID and DefaultClientSecret.
	ClientID     string
	ClientSecret string
	// RedirectURIs, when non-empty, is the allow-list of redirect URIs of the
	// authorize endpoint (-redirect-uri, repeatable or comma-separated).
	// Default: empty, any absolute URI.
	RedirectURIs []string
	// WorkspaceID is the id of the seeded workspace, the one every
	// authorization connects (-workspace). Default "sandbox-ws".
	WorkspaceID string
	// Seed is the generated content (-pages, -nested-pages, -blocks-per-page,
	// -block-depth, -databases, -rows, -blocks-per-row, -seed,
	// -unknown-blocks, -history, -multi-source-databases,
	// -many-reference-rows). Defaults: 20 pages of which 5 nested, 12
	// blocks per page, depth 3, 2 databases of 10 rows with 3 blocks each,
	// seed 1, no unknown blocks, 72h of history, no multi-source database,
	// no row with more than 25 references.
	Seed notionfake.SeedSpec
	// AccessTokenLifetime is how long the fake accepts an access token
	// (-access-token-lifetime). Default 0: forever.
	AccessTokenLifetime time.Duration
	// ExpiresIn makes token responses carry expires_in (-expires-in).
	// Default 0: none, as Notion.
	ExpiresIn time.Duration
	// RateLimit is the emulated per-connection budget in data requests per
	// minute (-rate-limit). Default 0: off. Notion's is 180.
	RateLimit int
	// Latency delays every data and token response (-latency). Default 0.
	Latency time.Duration
	// FailRate is the fraction, 0..1, of data requests answered 503
	// (-fail-rate; see the package documentation). Default 0.
	FailRate float64
	// LogLevel is the level of the zap logger NewLogger builds (-log-level).
	// Default info.
	LogLevel zapcore.Level
	// ShutdownTimeout bounds the graceful shutdown of Serve
	// (-shutdown-timeout). Default 5s.
	ShutdownTimeout time.Duration

	// Now is the fake's clock (no flag). Default time.Now.
	Now func() time.Time
	// Rand returns a uniform number in [0, 1) for FailRate; it must be safe
	// for concurrent use (no flag). Default math/rand/v2.Float64.
	Rand func() float64
}

// DefaultConfig returns the configuration used when no flag is given.
func DefaultConfig() Config {
	return Config{
		Addr:         "127.0.0.1:8787",
		ClientID:     notionfake.DefaultClientID,
		ClientSecret: notionfake.DefaultClientSecret,
		WorkspaceID:  "sandbox-ws",
		Seed: notionfake.SeedSpec{
			Seed:            1,
			Pages:           20,
			NestedPages:     5,
			BlocksPerPage:   12,
			BlockDepth:      3,
			Databases:       2,
			RowsPerDatabase: 10,
			BlocksPerRow:    3,
			History:         72 * time.Hour,
		},
		LogLevel:        zapcore.InfoLevel,
		ShutdownTimeout: 5 * time.Second,
	}
}

// Validate reports every invalid field at once.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Addr == "" {
		bad("-addr is empty")
	}
	if c.ClientID == "" {
		bad("-client-id is empty")
	}
	if c.ClientSecret == "" {
		bad("-client-secret is empty")
	}
	for _, u := range c.RedirectURIs {
		if p, err := url.Parse(u); err != nil || !p.IsAbs() {
			bad("-redirect-uri %q is not an absolute URI", u)
		}
	}
	if c.WorkspaceID == "" {
		bad("-workspace is empty")
	}
	intIn := func(name string, v, lo, hi int) {
		if v < lo || v > hi {
			bad("%s %d outside %d..%d", name, v, lo, hi)
		}
	}
	s := c.Seed
	intIn("-pages", s.Pages, 0, maxPages)
	intIn("-nested-pages", s.NestedPages, 0, maxPages) // the fake clamps it to -pages minus 1
	intIn("-blocks-per-page", s.BlocksPerPage, 0, maxBlocksPerPage)
	intIn("-block-depth", s.BlockDepth, 0, maxBlockDepth)
	intIn("-databases", s.Databases, 0, maxDatabases)
	intIn("-rows", s.RowsPerDatabase, 0, maxPages)
	intIn("-blocks-per-row", s.BlocksPerRow, 0, maxBlocksPerPage)
	intIn("-multi-source-databases", s.MultiSourceDatabases, 0, maxDatabases)
	intIn("-many-reference-rows", s.ManyReferenceRows, 0, maxPages)
	intIn("-users", s.Users, 0, maxPages)
	if s.Databases*s.RowsPerDatabase > maxPages {
		bad("-databases x -rows = %d rows, more than %d", s.Databases*s.RowsPerDatabase, maxPages)
	}
	if s.History < 0 {
		bad("-history %v is negative", s.History)
	}
	if c.AccessTokenLifetime < 0 {
		bad("-access-token-lifetime %v is negative", c.AccessTokenLifetime)
	}
	if c.ExpiresIn < 0 {
		bad("-expires-in %v is negative", c.ExpiresIn)
	}
	if c.RateLimit < 0 {
		bad("-rate-limit %d is negative", c.RateLimit)
	}
	if c.Latency < 0 || c.Latency > maxLatency {
		bad("-latency %v outside 0..%v", c.Latency, maxLatency)
	}
	if !(c.FailRate >= 0 && c.FailRate <= 1) { // also rejects NaN
		bad("-fail-rate %v outside 0..1", c.FailRate)
	}
	if c.ShutdownTimeout <= 0 {
		bad("-shutdown-timeout %v is not positive", c.ShutdownTimeout)
	}
	return errors.Join(errs...)
}

// ParseFlags parses args (without the program name) over DefaultConfig.
// A flag not on the command line takes its NOTION_SANDBOX_* variable from
// getenv when that is non-empty. The result is validated. Errors, and the
// usage text for -h (then the error is flag.ErrHelp), are written to output
// before they are returned, as package flag does.
func ParseFlags(args []string, getenv func(string) string, output io.Writer) (Config, error) {
	cfg := DefaultConfig()
	fs := flag.NewFlagSet("notion-sandbox", flag.ContinueOnError)
	fs.SetOutput(output)
	redirects := &listFlag{vals: &cfg.RedirectURIs}

	fs.StringVar(&cfg.Addr, "addr", cfg.Addr, "TCP `address` to listen on")
	fs.StringVar(&cfg.ClientID, "client-id", cfg.ClientID, "OAuth client id the fake accepts")
	fs.StringVar(&cfg.ClientSecret, "client-secret", cfg.ClientSecret,
		"OAuth client secret the fake accepts (prefer "+EnvPrefix+"CLIENT_SECRET: flags show in ps)")
	fs.Var(redirects, "redirect-uri", "allowed OAuth redirect `URI` (repeatable or comma-separated; default: any absolute URI)")
	fs.StringVar(&cfg.WorkspaceID, "workspace", cfg.WorkspaceID, "`id` of the seeded workspace that authorizations connect")
	fs.IntVar(&cfg.Seed.Pages, "pages", cfg.Seed.Pages, "regular pages to seed (database rows not included)")
	fs.IntVar(&cfg.Seed.NestedPages, "nested-pages", cfg.Seed.NestedPages, "how many of -pages are child pages of another page")
	fs.IntVar(&cfg.Seed.BlocksPerPage, "blocks-per-page", cfg.Seed.BlocksPerPage, "top-level blocks per page")
	fs.IntVar(&cfg.Seed.BlockDepth, "block-depth", cfg.Seed.BlockDepth, "levels of nested blocks (1: flat)")
	fs.IntVar(&cfg.Seed.Databases, "databases", cfg.Seed.Databases, "databases to seed")
	fs.IntVar(&cfg.Seed.RowsPerDatabase, "rows", cfg.Seed.RowsPerDatabase, "rows per database")
	fs.IntVar(&cfg.Seed.BlocksPerRow, "blocks-per-row", cfg.Seed.BlocksPerRow, "top-level blocks of each row's content")
	fs.Int64Var(&cfg.Seed.Seed, "seed", cfg.Seed.Seed, "seed of the generated content (same seed, same ids and text)")
	fs.BoolVar(&cfg.Seed.UnknownBlocks, "unknown-blocks", cfg.Seed.UnknownBlocks, "add a block of a type API clients do not know to each page")
	fs.IntVar(&cfg.Seed.MultiSourceDatabases, "multi-source-databases", cfg.Seed.MultiSourceDatabases,
		"how many databases get a second data source (2022-06-28 cannot query them)")
	fs.IntVar(&cfg.Seed.ManyReferenceRows, "many-reference-rows", cfg.Seed.ManyReferenceRows,
		"rows per database with 30 relation, people and rich_text items (more than Notion's 25 per value)")
	fs.BoolVar(&cfg.Seed.EveryType, "every-type", cfg.Seed.EveryType,
		"add a page with one block of every block type and a row with one value of every property type (the SDK's lists)")
	fs.IntVar(&cfg.Seed.Users, "users", cfg.Seed.Users,
		"people added to the workspace (plus one other bot), referenced by created_by, people values and mentions")
	fs.BoolVar(&cfg.Seed.Files, "files", cfg.Seed.Files,
		"give pages and rows Notion-hosted files (icons, covers, file blocks, files properties) behind signed URLs that expire after an hour")
	fs.DurationVar(&cfg.Seed.History, "history", cfg.Seed.History, "spread created and edited times over this past `duration`")
	fs.DurationVar(&cfg.AccessTokenLifetime, "access-token-lifetime", cfg.AccessTokenLifetime,
		"how long access tokens are accepted (0: forever)")
	fs.DurationVar(&cfg.ExpiresIn, "expires-in", cfg.ExpiresIn, "send expires_in in token responses (0: none, like Notion)")
	fs.IntVar(&cfg.RateLimit, "rate-limit", cfg.RateLimit, "data requests per minute per connection, then 429 (0: off; Notion: 180)")
	fs.DurationVar(&cfg.Latency, "latency", cfg.Latency, "delay of every data and token response")
	fs.Float64Var(&cfg.FailRate, "fail-rate", cfg.FailRate, "`fraction` 0..1 of data requests answered 503")
	fs.Var(&cfg.LogLevel, "log-level", "log `level`: debug (one line per request), info, warn, error")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", cfg.ShutdownTimeout, "bound of the graceful shutdown")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: notion-sandbox [flags]\n\n"+
			"A local Notion (OAuth and data API) over a seeded workspace, with an admin API under /_sandbox/.\n"+
			"Every flag can also be set with %s<NAME> (-rate-limit: %sRATE_LIMIT).\n"+
			"notion-sandbox -version prints the build (module version, commit, Go version).\n\n", EnvPrefix, EnvPrefix)
		fs.PrintDefaults()
		fmt.Fprintf(fs.Output(), "\nAdmin API (JSON, no authentication: keep the listener on loopback; GET /_sandbox/ lists it too):\n")
		for _, r := range AdminRoutes() {
			fmt.Fprintf(fs.Output(), "  %-6s %-31s %s\n", r.Method, r.Path, r.Summary)
		}
	}

	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		name := EnvName(f.Name)
		v := getenv(name)
		if v == "" || envErr != nil {
			return
		}
		if err := f.Value.Set(v); err != nil {
			envErr = fmt.Errorf("%s: %w", name, err)
		}
	})
	if envErr != nil {
		fmt.Fprintln(output, "notion-sandbox:", envErr)
		return Config{}, envErr
	}
	redirects.fromEnv = true // the command line replaces the variable's list
	if err := fs.Parse(args); err != nil {
		return Config{}, err // already reported by fs
	}
	if fs.NArg() > 0 {
		err := fmt.Errorf("unexpected arguments: %q", fs.Args())
		fmt.Fprintln(output, "notion-sandbox:", err)
		return Config{}, err
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintln(output, "notion-sandbox:", strings.ReplaceAll(err.Error(), "\n", "; "))
		return Config{}, err
	}
	return cfg, nil
}

// EnvName returns the environment variable of flag name: NOTION_SANDBOX_ and
// the name in upper case with '-' as '_'.
func EnvName(flagName string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// listFlag is a repeatable, comma-separated string flag. Values set from the
// environment are replaced, not extended, by the command line.
type listFlag struct {
	vals    *[]string
	fromEnv bool
}

func (l *listFlag) String() string {
	if l == nil || l.vals == nil {
		return ""
	}
	return strings.Join(*l.vals, ",")
}

func (l *listFlag) Set(s string) error {
	if l.fromEnv {
		*l.vals, l.fromEnv = nil, false
	}
	for v := range strings.SplitSeq(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l.vals = append(*l.vals, v)
		}
	}
	return nil
}
