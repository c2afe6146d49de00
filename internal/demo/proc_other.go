//go:build !unix

package demo

import "syscall"

// sysProcAttr has nothing to set on systems without process groups; the
// demo is meant for Linux and macOS.
func sysProcAttr() *syscall.SysProcAttr { return nil }
