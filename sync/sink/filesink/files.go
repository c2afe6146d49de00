package filesink

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/notionsync/notionsync/sync/sink/record"
)

// Files (record.FileStore) live under the connection's folder:
//
//	<root>/<connection_id>/files/<sha256><ext>          the bytes, once per content
//	<root>/<connection_id>/files/.keys/<sha256 of key>.json  reference key -> file
//	<root>/<connection_id>/files/.tmp-*                 a put in progress
//
// A put streams into a temporary file while hashing, fsyncs it and renames
// it to its hash: two workers putting the same bytes both rename, and the
// second rename replaces identical content. The key index is written after
// the file, so a key never names a file that is not there.

func (s *Sink) filesDir(conn string) string { return filepath.Join(s.root, conn, "files") }

func keyFile(dir, key string) string {
	h := sha256.Sum256([]byte(key))
	return filepath.Join(dir, ".keys", hex.EncodeToString(h[:])+".json")
}

// PutFile implements record.FileStore.
func (s *Sink) PutFile(ctx context.Context, conn string, fm record.FileMeta, r io.Reader) (record.FileLink, error) {
	end, err := s.begin()
	if err != nil {
		return record.FileLink{}, err
	}
	defer end()
	if err := record.ValidateConnectionID(conn); err != nil {
		return record.FileLink{}, err
	}
	if fm.Key == "" {
		return record.FileLink{}, fmt.Errorf("filesink: %w: empty key", record.ErrInvalidFile)
	}
	dir := s.filesDir(conn)
	if err := os.MkdirAll(filepath.Join(dir, ".keys"), s.dirMode); err != nil {
		return record.FileLink{}, fmt.Errorf("filesink: create directory: %w", err)
	}
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return record.FileLink{}, fmt.Errorf("filesink: create temporary file: %w", err)
	}
	tmp := f.Name()
	committed := false
	defer func() {
		if !committed {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), ctxReader{ctx, r})
	if err != nil {
		return record.FileLink{}, err
	}
	if err := f.Chmod(s.fileMode); err != nil {
		return record.FileLink{}, fmt.Errorf("filesink: chmod %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		return record.FileLink{}, fmt.Errorf("filesink: fsync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return record.FileLink{}, fmt.Errorf("filesink: close %s: %w", tmp, err)
	}
	link := record.FileLink{Key: fm.Key, SHA256: hex.EncodeToString(h.Sum(nil)), Ext: record.FileExt(fm.Name, fm.ContentType),
		Size: n, ContentType: fm.ContentType}
	final := filepath.Join(dir, link.Name())
	if err := s.touch(final); err == nil {
		_ = os.Remove(tmp) // stored already: the same bytes, now handed out again (filegc.go)
	} else if err := s.touch(tmp); err != nil {
		return record.FileLink{}, fmt.Errorf("filesink: touch %s: %w", tmp, err)
	} else if err := os.Rename(tmp, final); err != nil {
		return record.FileLink{}, fmt.Errorf("filesink: rename to %s: %w", final, err)
	} else {
		link.Added = true
	}
	committed = true
	idx, err := json.Marshal(link)
	if err != nil {
		return record.FileLink{}, fmt.Errorf("filesink: encode key index: %w", err)
	}
	if err := writeFileAtomic(keyFile(dir, fm.Key), idx, s.fileMode); err != nil {
		return record.FileLink{}, err
	}
	return link, syncDir(dir)
}

// FileByKey implements record.FileStore.
func (s *Sink) FileByKey(ctx context.Context, conn, key string) (record.FileLink, error) {
	end, err := s.begin()
	if err != nil {
		return record.FileLink{}, err
	}
	defer end()
	if err := record.ValidateConnectionID(conn); err != nil {
		return record.FileLink{}, err
	}
	dir := s.filesDir(conn)
	b, err := os.ReadFile(keyFile(dir, key))
	if notExist(err) {
		return record.FileLink{}, fmt.Errorf("file %q: %w", key, record.ErrNotFound)
	}
	if err != nil {
		return record.FileLink{}, fmt.Errorf("filesink: read key index: %w", err)
	}
	var l record.FileLink
	if err := json.Unmarshal(b, &l); err != nil || !record.ValidFileLink(l) || l.Key != key {
		return record.FileLink{}, fmt.Errorf("filesink: key index of %q is corrupt", key)
	}
	if err := s.touch(filepath.Join(dir, l.Name())); err != nil {
		// The bytes were removed (by hand, or collected as an orphan):
		// fetch them again. Touching marks the file as handed out to a
		// sync, which keeps it from the garbage collection (filegc.go).
		return record.FileLink{}, fmt.Errorf("file %q: %w", key, record.ErrNotFound)
	}
	return l, nil
}

// FileUsage implements record.FileStore: the size of the connection's
// stored files (temporary files and the index not counted).
func (s *Sink) FileUsage(ctx context.Context, conn string) (int64, error) {
	end, err := s.begin()
	if err != nil {
		return 0, err
	}
	defer end()
	if err := record.ValidateConnectionID(conn); err != nil {
		return 0, err
	}
	entries, err := os.ReadDir(s.filesDir(conn))
	if notExist(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("filesink: list files: %w", err)
	}
	var total int64
	for _, e := range entries {
		if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		total += info.Size()
	}
	return total, nil
}

// OpenFile implements record.FileStore.
func (s *Sink) OpenFile(ctx context.Context, conn string, l record.FileLink) (io.ReadCloser, error) {
	if err := record.ValidateConnectionID(conn); err != nil {
		return nil, err
	}
	if !record.ValidFileLink(l) {
		return nil, fmt.Errorf("filesink: %w: %q", record.ErrInvalidFile, l.SHA256+l.Ext)
	}
	f, err := os.Open(filepath.Join(s.filesDir(conn), l.Name()))
	if err != nil {
		if notExist(err) {
			return nil, fmt.Errorf("file %s: %w", l.Name(), record.ErrNotFound)
		}
		return nil, fmt.Errorf("filesink: %w", err)
	}
	return f, nil
}

// ctxReader stops a copy when ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

var _ record.FileStore = (*Sink)(nil)
