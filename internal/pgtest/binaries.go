package pgtest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// ErrNotInstalled is returned (wrapped) by Start when the PostgreSQL server
// binaries cannot be found.
var ErrNotInstalled = errors.New("PostgreSQL server binaries (postgres, initdb) not found in PATH or /usr/lib/postgresql/*/bin; " +
	"run `make deps` (installs the apt package postgresql-15 when root)")

// debianBinGlob is where Debian and Ubuntu install the server binaries, one
// directory per major version.
const debianBinGlob = "/usr/lib/postgresql/*/bin"

// binaries are the absolute paths of the programs the package runs.
type binaries struct {
	postgres string
	initdb   string
}

// findBinaries looks in binDir when it is set, else in PATH, else in the
// highest version directory matching glob.
func findBinaries(binDir, glob string) (binaries, error) {
	if binDir != "" {
		b, ok := binariesIn(binDir)
		if !ok {
			return binaries{}, fmt.Errorf("pgtest: no postgres and initdb in BinDir %s: %w", binDir, ErrNotInstalled)
		}
		return b, nil
	}
	pg, errPG := exec.LookPath("postgres")
	initdb, errInit := exec.LookPath("initdb")
	if errPG == nil && errInit == nil {
		return binaries{postgres: pg, initdb: initdb}, nil
	}
	dirs, err := filepath.Glob(glob)
	if err != nil {
		return binaries{}, fmt.Errorf("pgtest: %w", err)
	}
	for _, dir := range sortByVersionDesc(dirs) {
		if b, ok := binariesIn(dir); ok {
			return b, nil
		}
	}
	return binaries{}, fmt.Errorf("pgtest: %w", ErrNotInstalled)
}

func binariesIn(dir string) (binaries, bool) {
	b := binaries{postgres: filepath.Join(dir, "postgres"), initdb: filepath.Join(dir, "initdb")}
	return b, isExecutable(b.postgres) && isExecutable(b.initdb)
}

func isExecutable(path string) bool {
	info, err := os.Stat(path)
	return err == nil && info.Mode().IsRegular() && info.Mode().Perm()&0o111 != 0
}

// sortByVersionDesc orders ".../<version>/bin" paths by version, highest
// first ("16" before "15" before "9.6"). Paths whose version part is not
// numeric sort last.
func sortByVersionDesc(dirs []string) []string {
	version := func(dir string) []int {
		var v []int
		for f := range strings.SplitSeq(filepath.Base(filepath.Dir(dir)), ".") {
			n, err := strconv.Atoi(f)
			if err != nil {
				return nil
			}
			v = append(v, n)
		}
		return v
	}
	out := slices.Clone(dirs)
	slices.SortStableFunc(out, func(a, b string) int { return slices.Compare(version(b), version(a)) })
	return out
}

// serverUser is the unprivileged account PostgreSQL runs as when the tests
// run as root; nil otherwise.
type serverUser struct {
	name string
	cred *syscall.Credential
}

// unprivilegedUser returns nil when not running as root, else the postgres
// account or, failing that, nobody.
func unprivilegedUser() (*serverUser, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	var errs []error
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		uid, errU := strconv.ParseUint(u.Uid, 10, 32)
		gid, errG := strconv.ParseUint(u.Gid, 10, 32)
		if errU != nil || errG != nil {
			errs = append(errs, fmt.Errorf("user %s: non-numeric uid %q or gid %q", name, u.Uid, u.Gid))
			continue
		}
		return &serverUser{name: name, cred: &syscall.Credential{
			Uid: uint32(uid),
			Gid: uint32(gid),
			// Empty Groups with NoSetGroups false drops root's
			// supplementary groups.
			Groups: []uint32{},
		}}, nil
	}
	return nil, fmt.Errorf("pgtest: running as root and no unprivileged user (postgres, nobody) to run PostgreSQL as: %w", errors.Join(errs...))
}

// reachable reports whether u can search (traverse) dir and all its parents.
func (u *serverUser) reachable(dir string) bool {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return false
	}
	for {
		info, err := os.Stat(dir)
		if err != nil {
			return false
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			return false
		}
		var bit os.FileMode
		switch {
		case st.Uid == u.cred.Uid:
			bit = 0o100
		case st.Gid == u.cred.Gid:
			bit = 0o010
		default:
			bit = 0o001
		}
		if info.Mode().Perm()&bit == 0 {
			return false
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return true
		}
		dir = parent
	}
}
