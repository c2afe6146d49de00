package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
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

// maxIdentifierLen is PostgreSQL's NAMEDATALEN-1.
const maxIdentifierLen = 63

// NewDatabase creates an empty database for tb, named after the test plus a
// random suffix, and returns its DSN. The database is dropped in tb.Cleanup,
// forcibly (connections still open are terminated), so close pools in a
// Cleanup registered after NewDatabase or before the test returns. It fails
// the test when the database cannot be created.
func (s *Server) NewDatabase(tb testing.TB) string {
	tb.Helper()
	if err := s.running(); err != nil {
		tb.Fatal(err)
	}
	name := databaseName(tb.Name())
	ident := pgx.Identifier{name}.Sanitize()
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	if err := s.admin(ctx, "CREATE DATABASE "+ident); err != nil {
		tb.Fatalf("pgtest: create database %s: %v", name, err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
		defer cancel()
		if err := s.admin(ctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
			tb.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	return s.DatabaseDSN(name)
}

// databaseName turns a test name into a unique, lower-case database name of
// at most 63 bytes: "t_<name>_<16 hex digits>".
func databaseName(testName string) string {
	var b [8]byte
	// crypto/rand.Read never returns an error (it crashes the program
	// irrecoverably instead).
	_, _ = rand.Read(b[:])
	suffix := "_" + hex.EncodeToString(b[:])
	name := strings.Map(func(r rune) rune {
		switch {
		case 'a' <= r && r <= 'z', '0' <= r && r <= '9':
			return r
		case 'A' <= r && r <= 'Z':
			return r - 'A' + 'a'
		default:
			return '_'
		}
	}, testName)
	name = "t_" + name
	if room := maxIdentifierLen - len(suffix); len(name) > room {
		name = name[:room]
	}
	return name + suffix
}
