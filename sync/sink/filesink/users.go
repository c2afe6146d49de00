package filesink

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/notionsync/notionsync/sync/sink/record"
)

// A connection's users live in one document, <root>/<conn>/users.json:
//
//	{"_notionsync": {"format": 1, "kind": "users", "connection_id": ..., "synced_at": ...},
//	 "users": [<user object as Notion returned it>, ...],
//	 "former_users": [{"removed_at": ..., "user": <user object>}, ...]}
//
// "users" is the latest complete listing; "former_users" the users earlier
// listings held and later ones lack (kept so that old pages still resolve
// to a name). A listing synced before the stored one is rejected.

const usersFile = "users.json"

type usersMeta struct {
	Format       int       `json:"format"`
	Kind         string    `json:"kind"`
	ConnectionID string    `json:"connection_id"`
	SyncedAt     time.Time `json:"synced_at"`
}

type formerUser struct {
	RemovedAt time.Time       `json:"removed_at"`
	User      json.RawMessage `json:"user"`
}

type usersDocument struct {
	Meta   usersMeta         `json:"_notionsync"`
	Users  []json.RawMessage `json:"users"`
	Former []formerUser      `json:"former_users"`
}

// PutUsers replaces the connection's users with u's listing, unless a
// listing synced later is stored (written false). Users the stored listing
// held and u lacks are kept as former users.
func (s *Sink) PutUsers(ctx context.Context, u *record.Users) (written bool, err error) {
	end, err := s.begin()
	if err != nil {
		return false, err
	}
	defer end()
	nu, err := u.Normalized(s.now())
	if err != nil {
		return false, err
	}
	dir := filepath.Join(s.root, nu.ConnectionID)
	lockDir := filepath.Join(dir, ".locks")
	if err := os.MkdirAll(lockDir, s.dirMode); err != nil {
		return false, fmt.Errorf("filesink: create directory: %w", err)
	}
	doc := filepath.Join(dir, usersFile)
	unlock, err := s.locks.lock(ctx, doc)
	if err != nil {
		return false, err
	}
	defer unlock()
	lf, err := flockFile(filepath.Join(lockDir, "users.lock"))
	if err != nil {
		return false, err
	}
	defer lf.Close()

	cur, err := readUsers(doc)
	if err != nil && !notExist(err) {
		return false, err
	}
	if err == nil && cur.Meta.SyncedAt.After(nu.SyncedAt) {
		return false, nil
	}
	out := usersDocument{
		Meta:  usersMeta{Format: formatVersion, Kind: "users", ConnectionID: nu.ConnectionID, SyncedAt: nu.SyncedAt},
		Users: make([]json.RawMessage, 0, len(nu.Users)),
	}
	listed := make(map[string]bool, len(nu.Users))
	for _, usr := range nu.Users {
		out.Users = append(out.Users, compact(usr.Object))
		listed[usr.ID] = true
	}
	if cur != nil {
		prev, err := cur.records()
		if err != nil {
			return false, fmt.Errorf("%s: %w", doc, err)
		}
		for _, p := range prev {
			if listed[p.ID] {
				continue
			}
			at := p.RemovedAt
			if at.IsZero() {
				at = nu.SyncedAt
			}
			listed[p.ID] = true
			out.Former = append(out.Former, formerUser{RemovedAt: at, User: compact(p.Object)})
		}
	}
	data, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return false, fmt.Errorf("filesink: encode users: %w", err)
	}
	if err := writeFileAtomic(doc, append(data, '\n'), s.fileMode); err != nil {
		return false, err
	}
	if err := syncDir(dir); err != nil {
		return false, err
	}
	s.names.forget(nu.ConnectionID)
	return true, nil
}

// GetUsers returns the connection's stored users, listed ones first (in
// Notion's order), then former ones (RemovedAt set), or ErrNotFound.
func (s *Sink) GetUsers(ctx context.Context, connectionID string) (*record.Users, error) {
	end, err := s.begin()
	if err != nil {
		return nil, err
	}
	defer end()
	if err := record.ValidateConnectionID(connectionID); err != nil {
		return nil, err
	}
	d, err := readUsers(filepath.Join(s.root, connectionID, usersFile))
	if notExist(err) {
		return nil, fmt.Errorf("users of %s: %w", connectionID, record.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	us, err := d.records()
	if err != nil {
		return nil, err
	}
	return &record.Users{ConnectionID: d.Meta.ConnectionID, Users: us, SyncedAt: d.Meta.SyncedAt}, nil
}

func (d *usersDocument) records() ([]record.User, error) {
	out := make([]record.User, 0, len(d.Users)+len(d.Former))
	for _, raw := range d.Users {
		u, err := record.UserFromObject(raw)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	for _, f := range d.Former {
		u, err := record.UserFromObject(f.User)
		if err != nil {
			return nil, err
		}
		u.RemovedAt = f.RemovedAt
		out = append(out, u)
	}
	return out, nil
}

func readUsers(path string) (*usersDocument, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var d usersDocument
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, corrupt(path, err)
	}
	return &d, nil
}

// compact returns raw without insignificant whitespace, so that
// MarshalIndent re-indents it cleanly; the value is unchanged.
func compact(raw json.RawMessage) json.RawMessage {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return raw // validated before: cannot happen
	}
	return b.Bytes()
}

// userNames caches each connection's user names for Markdown rendering,
// reloaded when users.json changes (another process may write it).
type userNames struct {
	mu sync.Mutex
	m  map[string]namesEntry
}

type namesEntry struct {
	mod   time.Time
	size  int64
	names map[string]string
}

func (n *userNames) forget(conn string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.m, conn)
}

// lookup returns the connection's user names (nil when it has no users
// stored or they cannot be read: the renderer then shows ids).
func (n *userNames) lookup(root, conn string) map[string]string {
	path := filepath.Join(root, conn, usersFile)
	fi, err := os.Stat(path)
	if err != nil {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if e, ok := n.m[conn]; ok && e.mod.Equal(fi.ModTime()) && e.size == fi.Size() {
		return e.names
	}
	d, err := readUsers(path)
	if err != nil {
		return nil
	}
	us, err := d.records()
	if err != nil {
		return nil
	}
	names := record.UserNames(us)
	if n.m == nil {
		n.m = make(map[string]namesEntry)
	}
	n.m[conn] = namesEntry{mod: fi.ModTime(), size: fi.Size(), names: names}
	return names
}
