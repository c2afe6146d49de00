package pgtest

import "syscall"

// sysProcAttr runs the child as cred (nil: as ourselves) and makes the kernel
// kill it when the test binary dies. Go applies Pdeathsig after switching
// user, so the kernel does not clear it.
func sysProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
}
