//go:build unix

package demo

import (
	"errors"
	"os"
	"syscall"
)

// tryLock takes an exclusive flock on f without waiting. It reports
// errDirLocked when another open file (another demo) holds it. The kernel
// drops the lock when the holder's process dies, however it dies, so a
// crashed demo never leaves a stale lock behind.
func tryLock(f *os.File) error {
	err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return errDirLocked
	}
	return err
}
