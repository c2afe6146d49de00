package config

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/caarlos0/env/v11"
)

var groupTypes = []reflect.Type{
	reflect.TypeFor[Redis](), reflect.TypeFor[Tokens](), reflect.TypeFor[Notion](), reflect.TypeFor[Sync](),
	reflect.TypeFor[Log](), reflect.TypeFor[Pool](), reflect.TypeFor[Files](), reflect.TypeFor[Control](),
}

func TestEveryFieldIsDocumented(t *testing.T) {
	t.Parallel()
	for _, g := range groupTypes {
		for i := range g.NumField() {
			f := g.Field(i)
			if !f.IsExported() {
				continue
			}
			if _, ok := f.Tag.Lookup("env"); !ok {
				t.Errorf("%s.%s has no env tag", g.Name(), f.Name)
			}
			doc := f.Tag.Get("doc")
			if doc == "" {
				t.Errorf("%s.%s has no doc tag", g.Name(), f.Name)
			}
			if !strings.HasSuffix(doc, ".") {
				t.Errorf("%s.%s doc tag is not a sentence: %q", g.Name(), f.Name, doc)
			}
		}
	}
	for _, v := range Reference() {
		if v.Doc == "" || v.Group == "" || v.Type == "" || len(v.UsedBy) == 0 {
			t.Errorf("incomplete reference entry: %+v", v)
		}
	}
}

// TestDocCommentsStateDefaults reads the package source: every field's doc
// comment ends its description with "Default: X." (X = envDefault),
// "Required." or "Default: unset".
func TestDocCommentsStateDefaults(t *testing.T) {
	t.Parallel()
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	groups := make(map[string]reflect.Type)
	for _, g := range groupTypes {
		groups[g.Name()] = g
	}
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			ts, ok := n.(*ast.TypeSpec)
			if !ok {
				return true
			}
			g, isGroup := groups[ts.Name.Name]
			st, isStruct := ts.Type.(*ast.StructType)
			if !isGroup || !isStruct {
				return true
			}
			for _, field := range st.Fields.List {
				for _, ident := range field.Names {
					sf, _ := g.FieldByName(ident.Name)
					comment := field.Doc.Text()
					def, hasDefault := sf.Tag.Lookup("envDefault")
					_, opts, _ := strings.Cut(sf.Tag.Get("env"), ",")
					var want string
					switch {
					case hasDefault:
						want = "Default: " + def + "."
					case strings.Contains(opts, "required"):
						want = "Required."
					default:
						want = "Default: unset"
					}
					if !strings.Contains(comment, want) {
						t.Errorf("%s.%s: doc comment does not say %q:\n%s", g.Name(), ident.Name, want, comment)
					}
					checked++
				}
			}
			return false
		})
	}
	if want := len(Reference()); checked != want {
		t.Errorf("checked %d field comments, the reference has %d variables", checked, want)
	}
}

// TestReferenceMatchesEnv checks the reference against env's own view of the
// structs, so names and defaults in the docs are the ones the loader uses.
func TestReferenceMatchesEnv(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cfg  any
		vars []Var
	}{
		{&Worker{}, WorkerReference()},
		{&Scheduler{}, SchedulerReference()},
	} {
		params, err := env.GetFieldParamsWithOptions(tc.cfg, env.Options{Prefix: Prefix, Environment: map[string]string{}})
		if err != nil {
			t.Fatal(err)
		}
		if len(params) != len(tc.vars) {
			t.Fatalf("%T: env sees %d variables, the reference %d", tc.cfg, len(params), len(tc.vars))
		}
		fields := make(map[string]bool)
		for i, p := range params {
			v := tc.vars[i]
			if p.Key != v.Name || p.DefaultValue != v.Default || p.Required != v.Required {
				t.Errorf("%T: env has %s default %q required %v; reference has %s default %q required %v",
					tc.cfg, p.Key, p.DefaultValue, p.Required, v.Name, v.Default, v.Required)
			}
			if p.HasDefaultValue && p.Required {
				t.Errorf("%s is both required and defaulted", p.Key)
			}
			// env reports parse errors by Go field name: names must be unique
			// within a binary to map errors back to variables.
			if fields[v.field] {
				t.Errorf("%T: field name %s is used twice", tc.cfg, v.field)
			}
			fields[v.field] = true
		}
	}
	names := make(map[string]bool)
	for _, v := range Reference() {
		if names[v.Name] {
			t.Errorf("%s listed twice", v.Name)
		}
		names[v.Name] = true
		if !strings.HasPrefix(v.Name, Prefix) {
			t.Errorf("%s lacks the prefix", v.Name)
		}
	}
}

// TestMessageConstantsExist checks that every var* constant used in messages
// names a variable of the reference.
func TestMessageConstantsExist(t *testing.T) {
	t.Parallel()
	known := make(map[string]bool)
	for _, v := range Reference() {
		known[v.Name] = true
	}
	fset := token.NewFileSet()
	files, _ := filepath.Glob("*.go")
	n := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(node ast.Node) bool {
			vs, ok := node.(*ast.ValueSpec)
			if !ok || len(vs.Values) != len(vs.Names) {
				return true
			}
			for i, id := range vs.Names {
				if !strings.HasPrefix(id.Name, "var") {
					continue
				}
				be, ok := vs.Values[i].(*ast.BinaryExpr)
				if !ok {
					t.Errorf("%s is not Prefix + \"...\"", id.Name)
					continue
				}
				lit, ok := be.Y.(*ast.BasicLit)
				if x, isIdent := be.X.(*ast.Ident); !ok || !isIdent || x.Name != "Prefix" {
					t.Errorf("%s is not Prefix + \"...\"", id.Name)
					continue
				}
				s, _ := strconv.Unquote(lit.Value)
				if !known[Prefix+s] {
					t.Errorf("%s = %s, which is not in the reference", id.Name, Prefix+s)
				}
				n++
			}
			return true
		})
	}
	if n < 30 {
		t.Errorf("found only %d var* constants; did the parsing break?", n)
	}
}

func TestReferenceUsedBy(t *testing.T) {
	t.Parallel()
	usedBy := make(map[string][]string)
	for _, v := range Reference() {
		usedBy[v.Name] = v.UsedBy
	}
	for name, want := range map[string][]string{
		"NOTIONSYNC_REDIS_URL":          {BinaryWorker, BinaryScheduler},
		"NOTIONSYNC_TOKEN_KEYS":         {BinaryWorker, BinaryScheduler},
		"NOTIONSYNC_WORKER_CONCURRENCY": {BinaryWorker},
		"NOTIONSYNC_ADMIN_TOKEN":        {BinaryScheduler},
	} {
		if !slices.Equal(usedBy[name], want) {
			t.Errorf("%s used by %v, want %v", name, usedBy[name], want)
		}
	}
	groups := []string{}
	for _, v := range Reference() {
		if len(groups) == 0 || groups[len(groups)-1] != v.Group {
			groups = append(groups, v.Group)
		}
	}
	if want := []string{"Redis", "Tokens", "Notion", "Sync", "Log", "Pool", "Files", "Control"}; !slices.Equal(groups, want) {
		t.Errorf("group order %v, want %v", groups, want)
	}
}

func TestWriteMarkdownAndHelp(t *testing.T) {
	t.Parallel()
	vars := Reference()
	var md, help bytes.Buffer
	if err := WriteMarkdown(&md, vars); err != nil {
		t.Fatal(err)
	}
	if err := WriteHelp(&help, vars); err != nil {
		t.Fatal(err)
	}
	rows := 0
	for _, line := range strings.Split(md.String(), "\n") {
		if strings.HasPrefix(line, "| `NOTIONSYNC_") {
			rows++
			if n := strings.Count(strings.ReplaceAll(line, `\|`, ""), "|"); n != 6 {
				t.Errorf("markdown row with %d cells separators: %s", n, line)
			}
		}
	}
	if rows != len(vars) {
		t.Errorf("markdown has %d rows, want %d", rows, len(vars))
	}
	for _, want := range []string{
		"### Redis", "### Control",
		"| `NOTIONSYNC_REDIS_URL` | URL | `redis://localhost:6379/0` | worker, scheduler |",
		"| `NOTIONSYNC_TOKEN_KEYS` | key list (secret) | **required** |",
		"| `NOTIONSYNC_ADMIN_TOKEN` | secret | **required** | scheduler |",
		"| `NOTIONSYNC_PUBLIC_URL` | string | unset | scheduler |",
	} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q", want)
		}
	}
	for _, want := range []string{
		"  NOTIONSYNC_REFRESH_LOCK_TTL (duration, default 30s)\n      Lifetime of the per-connection refresh lock",
		"  NOTIONSYNC_NOTION_CLIENT_SECRET (secret, required)\n",
		"  NOTIONSYNC_WORKER_QUEUES (queue weights, default tokens=6,sync=3,backfill=1)\n",
	} {
		if !strings.Contains(help.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, help.String())
		}
	}
	for _, line := range strings.Split(help.String(), "\n") {
		if strings.HasPrefix(line, "      ") && len(line) > 80 && strings.Contains(strings.TrimSpace(line), " ") {
			t.Errorf("help line longer than 80 columns: %q", line)
		}
	}
	if testing.Verbose() {
		_, _ = os.Stdout.Write(help.Bytes())
	}
}

func TestUnknownVars(t *testing.T) {
	t.Parallel()
	got := UnknownVars([]string{
		"PATH=/bin",
		"NOTIONSYNC_REDIS_URL=redis://x",
		"NOTIONSYNC_REDIS_ULR=redis://typo",
		"NOTIONSYNC_CONCURRENCY=3",
		"NOTIONSYNC_CONCURRENCY=4",
		"NOTIONSYNC_ADMIN_TOKEN=x",
		"notionsync_lower=1",
	})
	if want := []string{"NOTIONSYNC_CONCURRENCY", "NOTIONSYNC_REDIS_ULR"}; !slices.Equal(got, want) {
		t.Errorf("UnknownVars = %v, want %v", got, want)
	}
}
