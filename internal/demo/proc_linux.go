package demo

import "syscall"

// sysProcAttr puts each child in its own process group, so a Ctrl-C in the
// terminal reaches only the demo (which then stops the children in order),
// and makes the kernel SIGKILL the child when the demo dies, so no process
// outlives it. Pdeathsig is tied to the OS thread that forked the child; the
// package never locks threads, so the Go runtime keeps those threads alive.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
