// Package redistest runs real redis-server processes for tests.
//
// It owns the whole life of each process: a temporary working directory, a
// free loopback port, the command line, the readiness wait (PING answers
// PONG), a crash (Kill) or clean restart on the same port and directory, and
// the final Stop that reaps the process and removes the directory. Tests never
// talk to a shared Redis on 6379 and never mock Redis.
//
// # Use
//
// One server per test:
//
//	srv := redistest.StartTB(t, redistest.Options{})
//	rdb := srv.Client()
//	defer rdb.Close()
//
// One server per test package, shared by parallel tests that keep apart by
// key prefix (see UniquePrefix):
//
//	var srv *redistest.Server
//
//	func TestMain(m *testing.M) {
//		os.Exit(redistest.RunMain(m, redistest.Options{}, func(s *redistest.Server) { srv = s }))
//	}
//
// RunMain stops the server before it returns, so a leak check placed after it
// (goleak.Find) does not see the package's own goroutines.
//
// When redis-server is not installed, Start returns an error wrapping
// ErrNotInstalled; the tests fail with that message, they do not skip.
//
// # Concurrency
//
// All methods of Server are safe for concurrent use. Addr, Port and Dir never
// change after Start. Stop, Kill and Restart are serialised; Stop is
// idempotent, and after Stop the Server cannot be restarted. Client returns a
// new go-redis client on every call; the caller closes it.
//
// # Process lifetime
//
// On Linux the server is started with the parent-death signal set to
// SIGKILL, so it dies with the test binary even when that binary is killed or
// panics on a test timeout (the temporary directory is then left behind). The
// kernel ties that signal to the OS thread that forked the server, not to the
// process: if Start is called from a goroutine that has locked its OS thread
// (runtime.LockOSThread) and that goroutine later exits without unlocking, the
// Go runtime ends the thread and the kernel kills the server. Ordinary test
// code does not lock threads; the package accepts this caveat rather than
// pinning a thread per server.
package redistest
