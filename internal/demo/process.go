package demo

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
)

// logTailLines is how much of a process's log an error shows.
const logTailLines = 20

// Process is one child process of a Cluster: redis-server, notion-sandbox,
// a scheduler or a worker. Its standard output and error go to LogPath.
//
// All methods are safe for concurrent use.
type Process struct {
	name    string
	logPath string
	cmd     *exec.Cmd
	done    chan struct{} // closed once the process is reaped
	err     error         // cmd.Wait's result; read after done

	mu       sync.Mutex
	signaled bool // the Cluster (or its user) asked it to exit
}

// startProcess starts bin with args and env, its output appended to
// logPath. When onLine is set, standard output is read line by line, each
// line written to the log and passed to onLine (from one goroutine, in
// order); standard error always goes straight to the log.
func startProcess(name, bin string, args, env []string, dir, logPath string, onLine func(string)) (*Process, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("demo: %s: open log: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.Stderr = logf
	cmd.SysProcAttr = sysProcAttr()
	var stdout io.ReadCloser
	if onLine == nil {
		cmd.Stdout = logf
	} else if stdout, err = cmd.StdoutPipe(); err != nil {
		_ = logf.Close()
		return nil, fmt.Errorf("demo: %s: %w", name, err)
	}
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return nil, fmt.Errorf("demo: start %s (%s): %w", name, bin, err)
	}
	p := &Process{name: name, logPath: logPath, cmd: cmd, done: make(chan struct{})}
	drained := make(chan struct{})
	if stdout == nil {
		// The child holds its own descriptor.
		_ = logf.Close()
		close(drained)
	} else {
		go func() {
			defer close(drained)
			defer logf.Close()
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				line := sc.Text()
				_, _ = logf.WriteString(line + "\n")
				onLine(line)
			}
			_, _ = io.Copy(logf, stdout) // a line too long for the scanner
		}()
	}
	go func() {
		<-drained // StdoutPipe: read to EOF before Wait
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Name returns the process's name in the cluster ("worker-0", "redis", ...).
func (p *Process) Name() string { return p.name }

// Pid returns the operating-system process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// LogPath returns the file that receives the process's output.
func (p *Process) LogPath() string { return p.logPath }

// Done is closed once the process has exited and been reaped.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// ExitErr returns how the process ended: nil for exit status 0, an
// *exec.ExitError otherwise. It returns nil while the process runs.
func (p *Process) ExitErr() error {
	if !p.Exited() {
		return nil
	}
	return p.err
}

// Unexpected reports whether the process has exited without being asked to
// (a crash, a failed start).
func (p *Process) Unexpected() bool {
	if !p.Exited() {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.signaled
}

// Signal sends sig to the process and marks its exit as expected. A process
// that has already exited is not an error.
func (p *Process) Signal(sig os.Signal) error {
	p.mu.Lock()
	p.signaled = true
	p.mu.Unlock()
	if p.Exited() {
		return nil
	}
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("demo: signal %s: %w", p.name, err)
	}
	return nil
}

// Kill sends SIGKILL (a crash) and returns once the process is reaped.
func (p *Process) Kill() {
	_ = p.Signal(syscall.SIGKILL) // only fails if the process is gone
	<-p.done
}

// Terminate asks the process to exit with SIGTERM and waits until it has.
// When ctx ends first it sends SIGKILL, waits, and returns an error. It also
// returns an error when the process exits with a non-zero status, with the
// tail of its log.
func (p *Process) Terminate(ctx context.Context) error {
	if err := p.Signal(syscall.SIGTERM); err != nil {
		p.Kill()
		return err
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		p.Kill()
		return fmt.Errorf("demo: %s did not exit after SIGTERM (%w); killed", p.name, context.Cause(ctx))
	}
	if p.err != nil {
		return p.exitError()
	}
	return nil
}

// exitError describes a non-zero exit, with the tail of the log.
func (p *Process) exitError() error {
	return fmt.Errorf("demo: %s exited: %w (log %s)\n%s", p.name, p.err, p.logPath, indent(logTail(p.logPath, logTailLines)))
}

// logTail returns the last n lines of the file at path ("" if unreadable).
func logTail(path string, n int) string {
	const maxRead = 64 << 10
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	off := max(0, st.Size()-maxRead)
	buf := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(buf, off); err != nil && !errors.Is(err, io.EOF) {
		return ""
	}
	lines := bytes.Split(bytes.TrimRight(buf, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

func indent(s string) string {
	if s == "" {
		return "  (empty log)"
	}
	return "  | " + strings.ReplaceAll(s, "\n", "\n  | ")
}
