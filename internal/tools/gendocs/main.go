// Command gendocs writes the files derived from config.Reference(), so the
// configuration reference, the environment template and the loader cannot
// disagree:
//
//   - docs/configuration.md: every NOTIONSYNC_* variable with its type,
//     default, the binaries that read it and what it does
//     (config.WriteMarkdown), plus the variables docker-compose.yml itself
//     reads;
//   - .env.example: the same variables as a template for docker compose's
//     .env file: required ones uncommented and empty, the others commented
//     out with their default. Where docker-compose.yml gives a variable a
//     default of its own (e.g. NOTIONSYNC_REDIS_URL=redis://redis:6379/0),
//     that default is shown; gendocs reads it from docker-compose.yml.
//
// Run it from the repository root (make docs):
//
//	go run ./internal/tools/gendocs            # rewrite both files
//	go run ./internal/tools/gendocs -check     # exit 1 if either is out of date
//
// gendocs_test.go fails when a committed file differs from what gendocs
// generates, or when docker-compose.yml does not pass a variable through.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/notionsync/notionsync/config"
	"github.com/notionsync/notionsync/internal/notionfake"
	"github.com/notionsync/notionsync/internal/textwrap"
)

// Paths of the generated files and of the compose file, relative to the
// repository root.
const (
	configurationPath = "docs/configuration.md"
	envExamplePath    = ".env.example"
	composePath       = "docker-compose.yml"
)

// composeVar is a variable that docker-compose.yml reads for itself (in
// ${...} substitutions); the binaries never see it.
type composeVar struct {
	Name    string
	Default string // "" when unset is the default
	Doc     string
	// InCompose is set when docker-compose.yml must mention the variable
	// (COMPOSE_PROJECT_NAME and COMPOSE_PROFILES are read by docker compose
	// itself, not by the file).
	InCompose bool
}

// composeVars are the variables docker-compose.yml reads besides the
// NOTIONSYNC_* ones. None starts with NOTIONSYNC_: the binaries warn about
// NOTIONSYNC_* variables they do not know.
var composeVars = []composeVar{
	{Name: "COMPOSE_PROJECT_NAME", Doc: "Name of the compose project (prefix of container and volume names); default: the name of this directory."},
	{Name: "COMPOSE_PROFILES", Doc: "Optional services to start, comma-separated (same as --profile): postgres (PostgreSQL for the Postgres sink), sandbox (a local Notion; see the top of .env.example and docs/runbook.md)."},
	{Name: "IMAGE_TAG", Default: "dev", InCompose: true, Doc: "Tag of the images docker compose builds: notionsync/worker, notionsync/scheduler and notionsync/notion-sandbox."},
	{Name: "CONTROL_PORT", Default: "8080", InCompose: true, Doc: "Host port of the control plane (the control proxy in front of the scheduler replicas): OAuth, admin API, asynqmon. NOTIONSYNC_PUBLIC_URL and NOTIONSYNC_NOTION_REDIRECT_URI must match it."},
	{Name: "POSTGRES_PASSWORD", Default: "notionsync", InCompose: true, Doc: "Password of the notionsync user of the postgres service (profile postgres; not published on the host). Change it, and use the Postgres sink with NOTIONSYNC_SINK_URL=postgres://notionsync:<the same password>@postgres:5432/notionsync."},
	{Name: "REDIS_MAXMEMORY", Default: "1gb", InCompose: true, Doc: "Redis maxmemory: past it Redis refuses writes (policy noeviction) rather than evict a token or a task, or grow until the kernel kills it. About 2 KB per connection. Keep REDIS_MEMORY_LIMIT well above it."},
	{Name: "REDIS_MEMORY_LIMIT", Default: "2g", InCompose: true, Doc: "Memory limit of the redis container: REDIS_MAXMEMORY plus room for the copy-on-write pages of an AOF rewrite (up to as much again under heavy writes)."},
	{Name: "WORKER_MEMORY_LIMIT", Default: "2g", InCompose: true, Doc: "Memory limit of each worker container. A worker the kernel kills in the middle of a token refresh costs that connection its user: size it generously for NOTIONSYNC_WORKER_CONCURRENCY slots and pages up to NOTIONSYNC_MAX_OBJECT_BYTES."},
	{Name: "NOTION_SANDBOX_PAGES", InCompose: true, Doc: "Profile sandbox: regular pages the sandbox seeds (notion-sandbox -pages; default 20)."},
	{Name: "NOTION_SANDBOX_ACCESS_TOKEN_LIFETIME", InCompose: true, Doc: "Profile sandbox: how long the sandbox accepts an access token (notion-sandbox -access-token-lifetime; default 0, forever). A short one (e.g. 2m) makes refreshes and 401 handling visible."},
	{Name: "NOTION_SANDBOX_RATE_LIMIT", InCompose: true, Doc: "Profile sandbox: data requests per minute per connection before the sandbox answers 429 (notion-sandbox -rate-limit; default 0, off; Notion: 180)."},
}

func main() {
	root := flag.String("root", ".", "repository root")
	check := flag.Bool("check", false, "only check that the generated files are up to date; exit 1 if not")
	flag.Parse()
	if err := run(*root, *check, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "gendocs:", err)
		os.Exit(1)
	}
}

// run generates every file under root; with check it compares instead of
// writing.
func run(root string, check bool, out io.Writer) error {
	files, err := generate(root)
	if err != nil {
		return err
	}
	var stale []string
	for _, f := range files {
		path := filepath.Join(root, f.path)
		old, err := os.ReadFile(path)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if bytes.Equal(old, f.content) {
			continue
		}
		if check {
			stale = append(stale, f.path)
			continue
		}
		if err := os.WriteFile(path, f.content, 0o644); err != nil {
			return err
		}
		fmt.Fprintln(out, "wrote", f.path)
	}
	if len(stale) > 0 {
		return fmt.Errorf("out of date: %s (run make docs)", strings.Join(stale, ", "))
	}
	return nil
}

type file struct {
	path    string
	content []byte
}

// generate returns the generated files; it reads docker-compose.yml under
// root for the compose defaults shown in .env.example.
func generate(root string) ([]file, error) {
	vars := config.Reference()
	compose, err := os.ReadFile(filepath.Join(root, composePath))
	if err != nil {
		return nil, err
	}
	defaults, err := composeDefaults(compose)
	if err != nil {
		return nil, err
	}
	md, err := configurationMarkdown(vars)
	if err != nil {
		return nil, err
	}
	return []file{
		{configurationPath, md},
		{envExamplePath, envExample(vars, defaults)},
	}, nil
}

// composeEnvLine matches a NOTIONSYNC_* entry of docker-compose.yml's
// environment anchor: `NOTIONSYNC_X: ${NOTIONSYNC_X:-default}`, or for a
// required variable `NOTIONSYNC_X: ${NOTIONSYNC_X:?message}`, the value
// optionally in double quotes.
var composeEnvLine = regexp.MustCompile(`^\s*(NOTIONSYNC_[A-Z0-9_]+):\s*"?\$\{([A-Z0-9_]+)(:-|:\?)([^}]*)\}"?\s*$`)

// composeEntry is how docker-compose.yml passes one NOTIONSYNC_* variable.
type composeEntry struct {
	Default  string // substituted when unset or empty ("" for none)
	Required bool   // ${VAR:?message}: compose refuses to run without it
}

// composeEntries parses the NOTIONSYNC_* entries of docker-compose.yml.
func composeEntries(compose []byte) (map[string]composeEntry, error) {
	out := make(map[string]composeEntry)
	for i, line := range strings.Split(string(compose), "\n") {
		m := composeEnvLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		if m[1] != m[2] {
			return nil, fmt.Errorf("%s:%d: %s is set from ${%s}; want ${%s:-...}", composePath, i+1, m[1], m[2], m[1])
		}
		e := composeEntry{Default: m[4], Required: m[3] == ":?"}
		if e.Required {
			e.Default = ""
		}
		if prev, dup := out[m[1]]; dup && prev != e {
			return nil, fmt.Errorf("%s:%d: %s is passed two different ways (%+v and %+v)", composePath, i+1, m[1], prev, e)
		}
		out[m[1]] = e
	}
	return out, nil
}

// composeDefaults returns, for every NOTIONSYNC_* variable docker-compose.yml
// passes to the containers, the default it substitutes when the variable is
// unset or empty ("" for none: the binary's default applies; a required
// variable has none).
func composeDefaults(compose []byte) (map[string]string, error) {
	entries, err := composeEntries(compose)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(entries))
	for name, e := range entries {
		out[name] = e.Default
	}
	return out, nil
}

const generatedNote = "Generated by internal/tools/gendocs from config.Reference(); do not edit. Regenerate with `make docs` (go run ./internal/tools/gendocs)."

// configurationMarkdown renders docs/configuration.md.
func configurationMarkdown(vars []config.Var) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("# Configuration reference\n\n")
	b.WriteString("<!-- " + generatedNote + " -->\n\n")
	b.WriteString(`notionsync's binaries read only environment variables. The worker and the scheduler
read the ` + "`NOTIONSYNC_*`" + ` variables below (` + "`worker --help-env`" + ` and ` + "`scheduler --help-env`" + `
print the same list); the notion-sandbox reads ` + "`NOTION_SANDBOX_*`" + ` variables, one per flag
(` + "`notion-sandbox -h`" + `).

- An empty value counts as unset: the default applies.
- A configuration error stops the binary at start (exit status 2) with one line per problem,
  naming the variable; secret values are never printed.
- **required**: the binary does not start without it. Variables required only together
  with another one say so in their description.
- Secrets (type *secret* or *key list (secret)*) never appear in logs, errors or metrics.

With docker compose, put the variables in ` + "`.env`" + ` (start from ` + "`.env.example`" + `, which lists
every variable below with its default); ` + "`docker-compose.yml`" + ` passes them to the containers and
sets container-friendly defaults for a few (see ` + "`.env.example`" + `).

## Variables

`)
	if err := config.WriteMarkdown(&b, vars); err != nil {
		return nil, err
	}
	b.WriteString("\n## Variables of docker-compose.yml\n\n")
	b.WriteString("`docker-compose.yml` reads these for itself; the binaries never see them.\n\n")
	b.WriteString("| Variable | Default | Description |\n|---|---|---|\n")
	for _, v := range composeVars {
		def := "unset"
		if v.Default != "" {
			def = "`" + v.Default + "`"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", v.Name, def, strings.ReplaceAll(v.Doc, "|", `\|`))
	}
	return b.Bytes(), nil
}

// envExample renders .env.example. composeDefault holds docker-compose.yml's
// own defaults (composeDefaults).
func envExample(vars []config.Var, composeDefault map[string]string) []byte {
	var b bytes.Buffer
	comment := func(text string) {
		for _, line := range textwrap.Wrap(text, 86) {
			b.WriteString("# " + line + "\n")
		}
	}
	b.WriteString("# notionsync environment: copy to .env (cp .env.example .env) and fill in.\n")
	b.WriteString("# " + generatedNote + "\n")
	b.WriteString("#\n")
	comment("docker compose reads .env from this directory and docker-compose.yml passes every NOTIONSYNC_* variable below to the worker and scheduler containers. The binaries read the same variables when run directly. Full reference: docs/configuration.md.")
	b.WriteString("#\n")
	comment("Required (the binaries do not start without them): NOTIONSYNC_TOKEN_KEYS, NOTIONSYNC_NOTION_CLIENT_ID, NOTIONSYNC_NOTION_CLIENT_SECRET and NOTIONSYNC_ADMIN_TOKEN. Every other variable is commented out with its default; an empty value also means the default. Where docker-compose.yml has a default of its own, the commented value is that one.")
	b.WriteString("#\n")
	comment("Write values without quotes and without '$' (docker compose would substitute it): base64 keys (openssl rand -base64 32) and hex tokens (openssl rand -hex 32) are safe. Keep .env out of version control: it holds secrets.")
	b.WriteString("#\n")
	comment("To try notionsync without Notion, against the local sandbox (profile sandbox):")
	b.WriteString("#   COMPOSE_PROFILES=sandbox\n")
	b.WriteString("#   NOTIONSYNC_NOTION_CLIENT_ID=" + notionfake.DefaultClientID + "\n")
	b.WriteString("#   NOTIONSYNC_NOTION_CLIENT_SECRET=" + notionfake.DefaultClientSecret + "\n")
	b.WriteString("#   NOTIONSYNC_NOTION_API_URL=http://notion-sandbox:8787\n")
	comment("and see docs/runbook.md, \"Trying it with the sandbox\".")

	group := ""
	for _, v := range vars {
		if v.Group != group {
			group = v.Group
			fmt.Fprintf(&b, "\n# ---------------------------------------------------------------------------\n# %s\n# ---------------------------------------------------------------------------\n", group)
		}
		b.WriteString("\n")
		attrs := []string{v.Type}
		if v.Secret && v.Type != "secret" {
			attrs = append(attrs, "secret")
		}
		if v.Required {
			attrs = append(attrs, "REQUIRED")
		}
		attrs = append(attrs, "read by "+strings.Join(v.UsedBy, " and "))
		b.WriteString("# " + v.Name + " (" + strings.Join(attrs, "; ") + ")\n")
		comment(v.Doc)
		value := v.Default
		cd, inCompose := composeDefault[v.Name]
		switch {
		case v.Required:
		case inCompose && cd != "" && cd != v.Default:
			def := "unset"
			if v.Default != "" {
				def = v.Default
			}
			comment("Default: " + def + "; docker-compose.yml default: " + cd + ".")
			value = cd
		case v.Default != "":
			comment("Default: " + v.Default + ".")
		default:
			comment("Default: unset.")
		}
		if v.Required {
			b.WriteString(v.Name + "=\n")
		} else {
			b.WriteString("#" + v.Name + "=" + value + "\n")
		}
	}

	b.WriteString("\n# ---------------------------------------------------------------------------\n# docker-compose.yml's own variables (the binaries never see them)\n# ---------------------------------------------------------------------------\n")
	for _, v := range composeVars {
		b.WriteString("\n")
		comment(v.Name + ": " + v.Doc)
		b.WriteString("#" + v.Name + "=" + v.Default + "\n")
	}
	return b.Bytes()
}
