package config

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
)

// VarError is one problem with one environment variable. A Load function
// returns every problem it found, joined with errors.Join; Problems lists
// them.
//
// Error() reads "NAME=VALUE: what is wrong", or "NAME: what is wrong" when the
// value is not shown (unset, secret, or a URL that may carry credentials).
type VarError struct {
	// Var is the variable, e.g. NOTIONSYNC_REFRESH_LOCK_TTL.
	Var string
	// Value is the value as shown in the message (quoted when it is the raw
	// text); empty when it is not shown. Never a secret.
	Value string
	// Msg says what is wrong and, where it helps, what is expected.
	Msg string
}

func (e *VarError) Error() string {
	if e.Value == "" {
		return e.Var + ": " + e.Msg
	}
	return e.Var + "=" + e.Value + ": " + e.Msg
}

// Problems returns every *VarError in err's tree, in order. It returns nil
// for a nil error.
func Problems(err error) []*VarError {
	var out []*VarError
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case nil:
		case *VarError:
			out = append(out, e)
		case interface{ Unwrap() []error }:
			for _, inner := range e.Unwrap() {
				walk(inner)
			}
		case interface{ Unwrap() error }:
			walk(e.Unwrap())
		}
	}
	walk(err)
	return out
}

// collector gathers the problems of one load.
type collector struct {
	order  map[string]int  // variable -> position in the reference
	failed map[string]bool // variables that did not parse: no further checks
	errs   []*VarError
}

func newCollector(vars []Var) *collector {
	order := make(map[string]int, len(vars))
	for i, v := range vars {
		order[v.Name] = i
	}
	return &collector{order: order, failed: make(map[string]bool)}
}

// ok reports whether all names parsed, so checks on their values make sense.
func (c *collector) ok(names ...string) bool {
	for _, n := range names {
		if c.failed[n] {
			return false
		}
	}
	return true
}

// add records a problem with name unless name already failed to parse.
func (c *collector) add(name, shown, msg string) {
	if c.failed[name] {
		return
	}
	c.errs = append(c.errs, &VarError{Var: name, Value: shown, Msg: msg})
}

// addf is add with a formatted message.
func (c *collector) addf(name, shown, format string, args ...any) {
	c.add(name, shown, fmt.Sprintf(format, args...))
}

// addErr records e unless its variable already failed.
func (c *collector) addErr(e *VarError) {
	if e != nil {
		c.add(e.Var, e.Value, e.Msg)
	}
}

// fail records a parse problem and stops further checks of name.
func (c *collector) fail(name, shown, msg string) {
	c.errs = append(c.errs, &VarError{Var: name, Value: shown, Msg: msg})
	c.failed[name] = true
}

// err returns all problems joined, ordered as the reference lists the
// variables (stable within one variable), or nil.
func (c *collector) err() error {
	if len(c.errs) == 0 {
		return nil
	}
	slices.SortStableFunc(c.errs, func(a, b *VarError) int {
		return c.position(a.Var) - c.position(b.Var)
	})
	errs := make([]error, len(c.errs))
	for i, e := range c.errs {
		errs[i] = e
	}
	return errors.Join(errs...)
}

func (c *collector) position(name string) int {
	if p, ok := c.order[name]; ok {
		return p
	}
	return len(c.order)
}

// addEnvErrors rewrites the errors of env.Parse into VarErrors. vars are the
// variables of the struct parsed; environ is what it was parsed from.
func (c *collector) addEnvErrors(err error, vars []Var, environ map[string]string) {
	byField := make(map[string]Var, len(vars))
	byName := make(map[string]Var, len(vars))
	for _, v := range vars {
		byField[v.field] = v
		byName[v.Name] = v
	}
	var errs []error
	var agg env.AggregateError
	if errors.As(err, &agg) {
		errs = agg.Errors
	} else {
		errs = []error{err}
	}
	for _, e := range errs {
		switch e := e.(type) {
		case env.ParseError:
			v, known := byField[e.Name]
			if !known {
				// Unreachable while every field maps to one variable (a test
				// checks that); do not echo anything we cannot classify.
				c.fail(e.Name, "", "cannot parse the value")
				continue
			}
			shown := ""
			if !v.Secret {
				raw, set := environ[v.Name]
				if !set || raw == "" {
					raw = v.Default
				}
				shown = strconv.Quote(raw)
			}
			c.fail(v.Name, shown, parseMessage(e))
		case env.VarIsNotSetError:
			c.fail(e.Key, "", "required but not set"+requiredHint(byName[e.Key]))
		case env.EmptyVarError:
			c.fail(e.Key, "", "required but empty"+requiredHint(byName[e.Key]))
		default:
			// Programming errors (unsupported tag option, no parser): they
			// carry field names and types, never values.
			c.errs = append(c.errs, &VarError{Var: Prefix + "*", Msg: e.Error()})
		}
	}
}

// requiredHint says in a sentence what a required variable is for.
func requiredHint(v Var) string {
	if v.Doc == "" {
		return ""
	}
	return ". " + firstSentence(v.Doc)
}

// firstSentence returns s up to and including the first ". " that ends a
// sentence: not one inside parentheses, nor the dot of "e.g." or "i.e.",
// which would cut a hint before its example.
func firstSentence(s string) string {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(':
			depth++
		case ')':
			depth = max(depth-1, 0)
		case '.':
			if depth > 0 || !strings.HasPrefix(s[i+1:], " ") {
				continue
			}
			if strings.HasSuffix(s[:i], "e.g") || strings.HasSuffix(s[:i], "i.e") {
				continue
			}
			return s[:i+1]
		}
	}
	return s
}

// parseMessage says why env could not parse a value, without repeating the
// value (the message shows it when it is not secret).
func parseMessage(e env.ParseError) string {
	var num *strconv.NumError
	switch {
	case e.Type == reflect.TypeFor[time.Duration]():
		return "not a duration (write a number with a unit, e.g. 30s, 5m, 1h)"
	case e.Type.Kind() == reflect.Bool:
		return "not a boolean (write true or false)"
	case errors.As(e.Err, &num) && errors.Is(num.Err, strconv.ErrRange):
		return "out of range"
	case errors.As(e.Err, &num):
		return "not an integer"
	case e.Err != nil:
		// Our own types' messages (KeyRing, QueueWeights): they never contain
		// key material.
		return e.Err.Error()
	default:
		return "cannot parse the value"
	}
}

// showDuration prints d without trailing zero units: 1h, 2m, 1h30m, 15s.
func showDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
