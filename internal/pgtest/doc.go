// Package pgtest runs real PostgreSQL servers for tests.
//
// It owns the whole life of each server: finding the binaries (PATH first,
// then the highest version under /usr/lib/postgresql/*/bin), initdb into a
// temporary directory, a postmaster on a free loopback port with durability
// switched off for speed (fsync, synchronous_commit, full_page_writes), the
// readiness wait, one database per test (NewDatabase) and the final Stop
// that reaps the server and removes the directory.
//
// PostgreSQL refuses to run as root. When the tests run as root, initdb and
// postgres run as the "postgres" user, or "nobody" when there is none, and
// the temporary directory is handed to that user; it is created under
// os.TempDir, or /tmp when that user cannot reach os.TempDir. As any other
// user they simply run as that user.
//
// # Use
//
// One server per test package, one database per test:
//
//	var srv *pgtest.Server
//
//	func TestMain(m *testing.M) {
//		os.Exit(pgtest.RunMain(m, pgtest.Options{}, func(s *pgtest.Server) { srv = s }))
//	}
//
//	func TestSink(t *testing.T) {
//		t.Parallel()
//		dsn := srv.NewDatabase(t) // dropped in t.Cleanup
//		pool, err := pgxpool.New(ctx, dsn)
//		...
//	}
//
// StartTB starts a server for a single test instead. When the binaries are
// missing, Start returns an error wrapping ErrNotInstalled; tests fail with
// that message, they do not skip.
//
// # Concurrency
//
// All methods of Server are safe for concurrent use. Addr, Port, Dir and the
// DSN methods never change after Start. NewDatabase may be called from
// parallel tests. Stop is idempotent; after Stop, NewDatabase fails the test
// and the DSNs point at nothing.
//
// # Process lifetime
//
// On Linux the postmaster gets SIGKILL as its parent-death signal, so it dies
// with the test binary (its backends notice and exit on their own). As in
// package redistest, the kernel ties that signal to the OS thread that forked
// the server: a Start called from a goroutine locked to its thread that then
// exits without unlocking would kill the server early. Test code does not do
// that, and the package accepts the caveat.
package pgtest
