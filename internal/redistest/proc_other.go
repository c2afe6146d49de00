//go:build !linux

package redistest

import "syscall"

// sysProcAttr has no parent-death signal outside Linux: a server outlives a
// test binary that is killed before it can call Stop.
func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{} }
