//go:build !linux && !darwin && !dragonfly && !freebsd && !netbsd && !openbsd

package ctl

import "os"

// isTerminal reports whether f is a character device. That also holds for
// /dev/null, which then gets a confirmation prompt that reads nothing and
// declines: safe, if less helpful than "-yes is required".
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
