package redistest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"
)

// StartTB starts a server for one test and stops it in tb.Cleanup. It fails
// the test (it does not skip) when the server cannot start.
func StartTB(tb testing.TB, opts Options) *Server {
	tb.Helper()
	srv, err := Start(opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			tb.Error(err)
		}
	})
	return srv
}

// M is the part of *testing.M that RunMain needs.
type M interface {
	Run() (code int)
}

// RunMain is the body of a TestMain that shares one server across a test
// package: it starts the server, hands it to bind (which typically stores it
// in a package-level variable of the test package), runs the tests, stops the
// server and returns the exit code for os.Exit. A server that does not start
// or stop cleanly makes the exit code non-zero, with the reason on stderr.
func RunMain(m M, opts Options, bind func(*Server)) int {
	srv, err := Start(opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	bind(srv)
	code := m.Run()
	if err := srv.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// maxPrefixNameLen keeps prefixes of deeply nested subtests readable.
const maxPrefixNameLen = 64

// UniquePrefix returns a key prefix of the form "t:<test name>:<random>:"
// that differs for every call, so parallel tests (and repeated runs with
// -count) sharing one server never touch each other's keys. Characters of the
// test name other than letters, digits, '-', '_', '.' and '/' become '_', so
// the prefix contains no ':' of its own and no '{' or '}' hash-tag braces.
func UniquePrefix(tb testing.TB) string {
	tb.Helper()
	var b [8]byte
	// crypto/rand.Read never returns an error (it crashes the program
	// irrecoverably instead).
	_, _ = rand.Read(b[:])
	return "t:" + sanitizeName(tb.Name()) + ":" + hex.EncodeToString(b[:]) + ":"
}

func sanitizeName(name string) string {
	name = strings.Map(func(r rune) rune {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9',
			r == '-', r == '_', r == '.', r == '/':
			return r
		default:
			return '_'
		}
	}, name)
	if len(name) > maxPrefixNameLen {
		name = name[:maxPrefixNameLen]
	}
	return name
}
