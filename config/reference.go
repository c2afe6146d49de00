package config

import (
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/notionsync/notionsync/internal/textwrap"
)

// Prefix starts the name of every variable this package reads.
const Prefix = "NOTIONSYNC_"

// Binary names, as they appear in Var.UsedBy.
const (
	BinaryWorker    = "worker"
	BinaryScheduler = "scheduler"
)

// Var describes one environment variable. It is derived from the struct tags
// of the configuration (env, envDefault, doc), so the README, --help-env and
// the loader cannot disagree.
type Var struct {
	// Name is the full variable name, e.g. NOTIONSYNC_REDIS_URL.
	Name string
	// Group is the settings group: Redis, Tokens, Notion, Sync, Log, Pool
	// and Files (worker) or Control (scheduler).
	Group string
	// Type says what the value looks like: string, integer, boolean,
	// duration, URL, secret, list, key list, queue weights.
	Type string
	// Default is the value used when the variable is unset or empty; "" when
	// there is none.
	Default string
	// Required is set when the variable has no default and must be set.
	// (Variables required only together with another one say so in Doc.)
	Required bool
	// Secret is set when the value is never printed.
	Secret bool
	// Doc says what the variable does.
	Doc string
	// UsedBy lists the binaries that read it (BinaryWorker, BinaryScheduler).
	UsedBy []string

	field string // Go field name, to map env's parse errors back
}

// Reference returns every variable of both binaries: the groups in the order
// Redis, Tokens, Notion, Sync, Log, Pool, Files, Control; within a group in
// declaration order.
func Reference() []Var {
	worker := describe(reflect.TypeFor[Worker](), BinaryWorker)
	scheduler := describe(reflect.TypeFor[Scheduler](), BinaryScheduler)
	out := slices.Clone(worker)
	index := make(map[string]int, len(out))
	for i, v := range out {
		index[v.Name] = i
	}
	for _, v := range scheduler {
		if i, ok := index[v.Name]; ok {
			out[i].UsedBy = append(out[i].UsedBy, BinaryScheduler)
			continue
		}
		out = append(out, v)
	}
	return out
}

// WorkerReference returns the variables the worker reads.
func WorkerReference() []Var { return describe(reflect.TypeFor[Worker](), BinaryWorker) }

// SchedulerReference returns the variables the scheduler reads.
func SchedulerReference() []Var { return describe(reflect.TypeFor[Scheduler](), BinaryScheduler) }

// describe lists the variables of a configuration struct t (Worker or
// Scheduler), read by binary.
func describe(t reflect.Type, binary string) []Var {
	var out []Var
	var walk func(t reflect.Type, prefix, group string)
	walk = func(t reflect.Type, prefix, group string) {
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			tag, hasTag := f.Tag.Lookup("env")
			if !hasTag && f.Type.Kind() == reflect.Struct {
				walk(f.Type, prefix+f.Tag.Get("envPrefix"), f.Type.Name())
				continue
			}
			if !hasTag {
				continue
			}
			key, opts, _ := strings.Cut(tag, ",")
			def, hasDefault := f.Tag.Lookup("envDefault")
			required := slices.Contains(strings.Split(opts, ","), "required")
			out = append(out, Var{
				Name:     prefix + key,
				Group:    group,
				Type:     typeName(f.Type),
				Default:  def,
				Required: required && !hasDefault,
				Secret:   isSecretType(f.Type),
				Doc:      f.Tag.Get("doc"),
				UsedBy:   []string{binary},
				field:    f.Name,
			})
		}
	}
	walk(t, Prefix, "")
	return out
}

// isSecretType reports whether values of t must never be shown.
func isSecretType(t reflect.Type) bool {
	return t == reflect.TypeFor[Secret]() || t == reflect.TypeFor[KeyRing]()
}

// typeName says in a word what a value of t looks like.
func typeName(t reflect.Type) string {
	switch t {
	case reflect.TypeFor[time.Duration]():
		return "duration"
	case reflect.TypeFor[Secret]():
		return "secret"
	case reflect.TypeFor[URL]():
		return "URL"
	case reflect.TypeFor[KeyRing]():
		return "key list"
	case reflect.TypeFor[QueueWeights]():
		return "queue weights"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "integer"
	case reflect.Slice:
		return "list"
	default:
		return "string"
	}
}

// WriteMarkdown writes vars as Markdown: one table per group, for the README.
func WriteMarkdown(w io.Writer, vars []Var) error {
	var b strings.Builder
	group := ""
	for _, v := range vars {
		if v.Group != group || b.Len() == 0 {
			group = v.Group
			if b.Len() > 0 {
				b.WriteString("\n")
			}
			fmt.Fprintf(&b, "### %s\n\n", group)
			b.WriteString("| Variable | Type | Default | Used by | Description |\n")
			b.WriteString("|---|---|---|---|---|\n")
		}
		def := "`" + v.Default + "`"
		switch {
		case v.Required:
			def = "**required**"
		case v.Default == "":
			def = "unset"
		}
		typ := v.Type
		if v.Secret && typ != "secret" {
			typ += " (secret)"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n",
			v.Name, typ, mdEscape(def), strings.Join(v.UsedBy, ", "), mdEscape(v.Doc))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func mdEscape(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// WriteHelp writes vars as plain text for a --help-env flag.
func WriteHelp(w io.Writer, vars []Var) error {
	var b strings.Builder
	b.WriteString("Environment variables (an empty value counts as unset):\n")
	group := ""
	for _, v := range vars {
		if v.Group != group {
			group = v.Group
			fmt.Fprintf(&b, "\n%s\n", group)
		}
		detail := v.Type
		switch {
		case v.Required:
			detail += ", required"
		case v.Default != "":
			detail += ", default " + v.Default
		}
		if v.Secret && v.Type != "secret" {
			detail += ", secret"
		}
		fmt.Fprintf(&b, "  %s (%s)\n", v.Name, detail)
		for _, line := range textwrap.Wrap(v.Doc, 72) {
			b.WriteString("      " + line + "\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// UnknownVars returns the NOTIONSYNC_* names in environ ("NAME=value"
// entries, as os.Environ returns) that no binary reads: most likely typos.
// The binaries log them as warnings; they are not errors, so a newer
// environment file can serve an older binary.
func UnknownVars(environ []string) []string {
	// Read by other programs of the project (notionsyncctl), not the binaries.
	known := map[string]bool{Prefix + "CONTROL_URL": true}
	for _, v := range Reference() {
		known[v.Name] = true
	}
	var unknown []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, Prefix) && !known[name] && !slices.Contains(unknown, name) {
			unknown = append(unknown, name)
		}
	}
	slices.Sort(unknown)
	return unknown
}

// MapLookup returns a lookup function over m, for LoadWorkerFrom and
// LoadSchedulerFrom.
func MapLookup(m map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := m[name]
		return v, ok
	}
}
