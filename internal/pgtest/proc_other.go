//go:build unix && !linux

package pgtest

import "syscall"

// sysProcAttr runs the child as cred (nil: as ourselves). Outside Linux there
// is no parent-death signal: a server outlives a test binary that is killed
// before it can call Stop.
func sysProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred}
}
