package filesink

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestKeyedMutexHonoursContext(t *testing.T) {
	k := newKeyedMutex()
	unlock, err := k.lock(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	// Another key is independent.
	unlockB, err := k.lock(context.Background(), "b")
	if err != nil {
		t.Fatal(err)
	}
	unlockB()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := k.lock(ctx, "a"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("lock of a held key: %v", err)
	}
	unlock()
	unlock2, err := k.lock(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	unlock2()
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.m) != 0 {
		t.Errorf("entries left: %v", k.m)
	}
}

func TestFlockExcludesOtherOpenFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	f, err := flockFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// A second open file description (as another process would have) cannot
	// take the lock while f holds it.
	g, err := openNoLock(path)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if err := unix.Flock(int(g.Fd()), unix.LOCK_EX|unix.LOCK_NB); !errors.Is(err, unix.EWOULDBLOCK) {
		t.Fatalf("second flock while held: %v", err)
	}
	f.Close()
	if err := unix.Flock(int(g.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Fatalf("flock after release: %v", err)
	}
}

// openNoLock opens a lock file without locking it.
func openNoLock(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
}
