//go:build unix && !linux

package demo

import "syscall"

// sysProcAttr puts each child in its own process group, so a Ctrl-C in the
// terminal reaches only the demo. There is no parent-death signal outside
// Linux: children of a demo that is killed with SIGKILL keep running.
func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
