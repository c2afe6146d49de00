package redistest

import "syscall"

// sysProcAttr makes the kernel kill the server when the test binary dies.
// See the package documentation for the thread caveat of Pdeathsig.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
