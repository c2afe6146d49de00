package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/notionsync/notionsync/config"
)

// root is the repository root, seen from this package's directory (where go
// test runs it).
const root = "../../.."

func readRepoFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, path))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The committed generated files are what gendocs generates now: a variable
// added to config without `make docs` fails here.
func TestGeneratedFilesAreUpToDate(t *testing.T) {
	t.Parallel()
	files, err := generate(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 {
		t.Fatalf("generate returned %d files, want 2", len(files))
	}
	for _, f := range files {
		got := readRepoFile(t, f.path)
		if !bytes.Equal(got, f.content) {
			t.Errorf("%s is out of date: run `make docs` (go run ./internal/tools/gendocs)\n%s",
				f.path, firstDifference(got, f.content))
		}
	}
}

// firstDifference describes the first line where committed and generated
// differ.
func firstDifference(committed, generated []byte) string {
	a := strings.Split(string(committed), "\n")
	b := strings.Split(string(generated), "\n")
	for i := range max(len(a), len(b)) {
		var la, lb string
		if i < len(a) {
			la = a[i]
		}
		if i < len(b) {
			lb = b[i]
		}
		if la != lb {
			return "line " + strconv.Itoa(i+1) + ":\n  committed: " + la + "\n  generated: " + lb
		}
	}
	return "(same lines, different bytes)"
}

// envExampleVar matches a variable line of .env.example, commented out or
// not: "NAME=value" or "#NAME=value".
var envExampleVar = regexp.MustCompile(`(?m)^(#?)([A-Z][A-Z0-9_]*)=(.*)$`)

// Independently of the generator: .env.example names every variable of
// config.Reference() exactly once, required ones uncommented and empty,
// the others commented out.
func TestEnvExampleListsEveryVariable(t *testing.T) {
	t.Parallel()
	seen := map[string]int{}
	commented := map[string]bool{}
	value := map[string]string{}
	for _, m := range envExampleVar.FindAllStringSubmatch(string(readRepoFile(t, envExamplePath)), -1) {
		seen[m[2]]++
		commented[m[2]] = m[1] == "#"
		value[m[2]] = m[3]
	}
	for _, v := range config.Reference() {
		switch {
		case seen[v.Name] == 0:
			t.Errorf("%s is missing from %s", v.Name, envExamplePath)
		case seen[v.Name] > 1:
			t.Errorf("%s appears %d times in %s", v.Name, seen[v.Name], envExamplePath)
		case v.Required && (commented[v.Name] || value[v.Name] != ""):
			t.Errorf("%s is required: want an uncommented, empty %s= line", v.Name, v.Name)
		case !v.Required && !commented[v.Name]:
			t.Errorf("%s has a default: want it commented out", v.Name)
		}
		delete(seen, v.Name)
	}
	for _, v := range composeVars {
		if seen[v.Name] != 1 {
			t.Errorf("compose variable %s appears %d times in %s, want 1", v.Name, seen[v.Name], envExamplePath)
		}
		delete(seen, v.Name)
	}
	for name := range seen {
		t.Errorf("%s in %s is neither a config variable nor a compose variable", name, envExamplePath)
	}
}

// composeSubst matches a ${NAME...} substitution in docker-compose.yml ($$
// escapes are not substitutions).
var composeSubst = regexp.MustCompile(`(^|[^$])\$\{([A-Za-z_][A-Za-z0-9_]*)`)

// docker-compose.yml passes every variable to the containers (as
// NAME: ${NAME:-default}), reads no variable that .env.example does not
// document, and mentions every compose variable gendocs documents.
func TestComposePassesEveryVariable(t *testing.T) {
	t.Parallel()
	compose := readRepoFile(t, composePath)
	defaults, err := composeDefaults(compose)
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, v := range config.Reference() {
		known[v.Name] = true
		if _, ok := defaults[v.Name]; !ok {
			t.Errorf("%s does not pass %s to the containers (want `%s: ${%s:-}` in an x-*-env block)",
				composePath, v.Name, v.Name, v.Name)
		}
	}
	for name := range defaults {
		if !known[name] {
			t.Errorf("%s sets %s, which no binary reads", composePath, name)
		}
	}
	used := map[string]bool{}
	for line := range strings.Lines(string(compose)) {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue // comments are not interpolated
		}
		for _, m := range composeSubst.FindAllStringSubmatch(line, -1) {
			used[m[2]] = true
		}
	}
	for name := range used {
		if !known[name] && !slices.ContainsFunc(composeVars, func(v composeVar) bool { return v.Name == name }) {
			t.Errorf("%s reads ${%s}, which .env.example does not document (add it to composeVars)", composePath, name)
		}
	}
	for _, v := range composeVars {
		if v.InCompose && !used[v.Name] {
			t.Errorf("compose variable %s is documented but %s does not use it", v.Name, composePath)
		}
	}
}

// docker-compose.yml refuses to run without each required variable
// (${VAR:?message}, naming it) and requires nothing the binaries do not: a
// blank .env stops `docker compose up` with a message instead of starting
// containers that crash-loop on their configuration.
func TestComposeEnforcesRequiredVariables(t *testing.T) {
	t.Parallel()
	entries, err := composeEntries(readRepoFile(t, composePath))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range config.Reference() {
		e, ok := entries[v.Name]
		if !ok {
			continue // TestComposePassesEveryVariable reports it
		}
		switch {
		case v.Required && !e.Required:
			t.Errorf("%s passes the required %s with a default; want `%s: ${%s:?set %s in .env ...}`",
				composePath, v.Name, v.Name, v.Name, v.Name)
		case !v.Required && e.Required:
			t.Errorf("%s requires %s, which the binaries do not", composePath, v.Name)
		}
	}
	compose := string(readRepoFile(t, composePath))
	for _, v := range config.Reference() {
		if v.Required && !strings.Contains(compose, "${"+v.Name+":?set "+v.Name+" in .env") {
			t.Errorf("%s: the message of the required %s does not name it", composePath, v.Name)
		}
	}
}

// The environment docker-compose.yml gives the containers when .env sets
// only the required variables loads for both binaries, and an empty value
// really means the binary's default.
func TestComposeEnvironmentLoads(t *testing.T) {
	t.Parallel()
	defaults, err := composeDefaults(readRepoFile(t, composePath))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for name, def := range defaults {
		env[name] = def
	}
	env["NOTIONSYNC_TOKEN_KEYS"] = "k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
	env["NOTIONSYNC_NOTION_CLIENT_ID"] = "client-id"
	env["NOTIONSYNC_NOTION_CLIENT_SECRET"] = "client-secret"
	env["NOTIONSYNC_ADMIN_TOKEN"] = "0123456789abcdef0123"

	w, err := config.LoadWorkerFrom(config.MapLookup(env))
	if err != nil {
		t.Fatalf("worker configuration from docker-compose.yml: %v", err)
	}
	s, err := config.LoadSchedulerFrom(config.MapLookup(env))
	if err != nil {
		t.Fatalf("scheduler configuration from docker-compose.yml: %v", err)
	}
	// The healthchecks and the control proxy assume these ports.
	// Only the control server listens beyond loopback: the control proxy
	// reaches it; health and metrics stay inside their containers.
	if w.Pool.HTTPAddr != "127.0.0.1:8081" {
		t.Errorf("worker HTTP address = %q, want 127.0.0.1:8081 (healthcheck inside the container; not reachable from the network)", w.Pool.HTTPAddr)
	}
	if s.Control.ControlAddr != ":8080" {
		t.Errorf("scheduler control address = %q, want :8080 (control proxy, healthcheck)", s.Control.ControlAddr)
	}
	if s.Control.MetricsAddr != "127.0.0.1:9090" || s.Control.MetricsConnectionLabels {
		t.Errorf("scheduler metrics %q (connection labels %v), want 127.0.0.1:9090 without connection labels",
			s.Control.MetricsAddr, s.Control.MetricsConnectionLabels)
	}
	if got := w.Redis.URL.Value(); got != "redis://redis:6379/0" {
		t.Errorf("worker Redis URL = %q, want the compose service", got)
	}
	// The images' working directory is /var/lib/notionsync; the sync-data
	// volume is mounted at /var/lib/notionsync/data.
	if p, err := w.Sync.SinkFilePath(); err != nil || filepath.Clean(p) != "data" {
		t.Errorf("worker sink path = %q, %v; want ./data (the sync-data volume)", p, err)
	}
	if !w.Tokens.Cache {
		t.Error("an empty NOTIONSYNC_TOKEN_CACHE did not mean the default (true)")
	}
	if !strings.HasPrefix(s.Notion.RedirectURI, s.Control.PublicURL+"/") {
		t.Errorf("redirect URI %q is not under the public URL %q", s.Notion.RedirectURI, s.Control.PublicURL)
	}
}

func TestComposeDefaultsRejectsMismatchedNames(t *testing.T) {
	t.Parallel()
	_, err := composeDefaults([]byte("  NOTIONSYNC_A: ${NOTIONSYNC_B:-x}\n"))
	if err == nil {
		t.Fatal("want an error for NOTIONSYNC_A set from ${NOTIONSYNC_B}")
	}
	got, err := composeDefaults([]byte("x:\n  NOTIONSYNC_A: \"${NOTIONSYNC_A:-a b}\"\n  NOTIONSYNC_B: ${NOTIONSYNC_B:-}\n  OTHER: ${OTHER:-1}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["NOTIONSYNC_A"] != "a b" || got["NOTIONSYNC_B"] != "" {
		t.Fatalf("composeDefaults = %v", got)
	}
}

// -check reports stale files without touching them; a run writes them.
func TestRunCheckAndWrite(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "docs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, composePath), readRepoFile(t, composePath), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err := run(dir, true, &out)
	if err == nil || !strings.Contains(err.Error(), configurationPath) || !strings.Contains(err.Error(), envExamplePath) {
		t.Fatalf("check on an empty tree: err = %v, want both files out of date", err)
	}
	if _, err := os.Stat(filepath.Join(dir, configurationPath)); !os.IsNotExist(err) {
		t.Fatal("-check wrote a file")
	}
	if err := run(dir, false, &out); err != nil {
		t.Fatal(err)
	}
	if err := run(dir, true, &out); err != nil {
		t.Fatalf("check after a write: %v", err)
	}
}

// `make help` aligns its descriptions in one column, however long the
// longest target name (a fixed awk width of 10 pushed compose-check and
// fleet-short out of line).
func TestMakeHelpAligned(t *testing.T) {
	t.Parallel()
	cmd := exec.Command("make", "-s", "--no-print-directory", "-C", root, "help")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("make help: %v", err)
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) < 10 {
		t.Fatalf("make help printed %d lines:\n%s", len(lines), out)
	}
	col := -1
	for _, l := range lines {
		name, rest, ok := strings.Cut(strings.TrimPrefix(l, "  "), " ")
		if !ok || name == "" || !strings.HasPrefix(l, "  ") {
			t.Fatalf("make help line %q is not \"  target  description\"", l)
		}
		at := len(l) - len(strings.TrimLeft(rest, " "))
		if col == -1 {
			col = at
		}
		if at != col || strings.TrimSpace(rest) == "" {
			t.Errorf("make help: description of %s starts at column %d, want %d:\n%s", name, at, col, out)
		}
	}
}
