package filesink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/notionsync/notionsync/sync/sink/record"
)

// Garbage collection of orphaned files (record.FileCollector). The
// references are the Files of each live document's metadata (pages,
// databases, data sources; a tombstone references nothing). A pass:
//
//  1. lists the referenced names, then the stored files;
//  2. records in files/.orphans.json when each unreferenced file was first
//     found so (and forgets the ones referenced again);
//  3. deletes a file orphaned for grace whose modification time (set to
//     the sink's clock whenever a sync is handed the file: PutFile,
//     FileByKey) is older than grace too. It renames the file aside first
//     and checks the time again: a FileByKey that touched it before the
//     rename is seen (the file goes back), one after it finds no file and
//     the sync downloads it again. Key index entries naming deleted files
//     go too.
//
// A sync that looked a file up writes its document within seconds; grace
// (hours) separates the two.

const orphansFile = ".orphans.json"

// touch marks a file as handed out to a sync now (see above).
func (s *Sink) touch(path string) error {
	now := s.now()
	return os.Chtimes(path, now, now)
}

// CollectFiles implements record.FileCollector.
func (s *Sink) CollectFiles(ctx context.Context, conn string, grace time.Duration) (record.FileCollection, error) {
	var out record.FileCollection
	end, err := s.begin()
	if err != nil {
		return out, err
	}
	defer end()
	if err := record.ValidateConnectionID(conn); err != nil {
		return out, err
	}
	referenced := make(map[string]bool)
	for _, kind := range []record.Kind{record.KindPage, record.KindDatabase, record.KindDataSource} {
		dir := filepath.Join(s.root, conn, dirName(kind))
		entries, err := os.ReadDir(dir)
		if notExist(err) {
			continue
		}
		if err != nil {
			return out, fmt.Errorf("filesink: collect files: %w", err)
		}
		for _, e := range entries {
			if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			if err := ctx.Err(); err != nil {
				return out, err
			}
			m, err := readMeta(filepath.Join(dir, e.Name()))
			if notExist(err) {
				continue
			}
			if err != nil {
				// An unreadable document may reference anything: collect
				// nothing rather than a file it needs.
				return out, fmt.Errorf("filesink: collect files: %w", err)
			}
			if m.Deleted {
				continue
			}
			for _, l := range m.Files {
				referenced[l.Name()] = true
			}
		}
	}
	dir := s.filesDir(conn)
	entries, err := os.ReadDir(dir)
	if notExist(err) {
		return out, nil
	}
	if err != nil {
		return out, fmt.Errorf("filesink: collect files: %w", err)
	}
	statePath := filepath.Join(dir, orphansFile)
	since := make(map[string]time.Time)
	if b, err := os.ReadFile(statePath); err == nil {
		_ = json.Unmarshal(b, &since) // a corrupt state starts over: files wait grace again
	} else if !notExist(err) {
		return out, fmt.Errorf("filesink: collect files: %w", err)
	}
	now := s.now()
	cutoff := now.Add(-grace)
	next := make(map[string]time.Time)
	deleted := make(map[string]bool)
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || strings.HasPrefix(name, ".") || referenced[name] {
			continue
		}
		out.Orphans++
		first, ok := since[name]
		if !ok {
			first = now
		}
		next[name] = first
		if first.After(cutoff) {
			continue
		}
		n, err := s.collect(dir, name, cutoff)
		if err != nil {
			return out, err
		}
		if n >= 0 {
			out.Deleted++
			out.Bytes += n
			deleted[name] = true
			delete(next, name)
		}
	}
	b, err := json.Marshal(next)
	if err != nil {
		return out, fmt.Errorf("filesink: collect files: %w", err)
	}
	if err := writeFileAtomic(statePath, b, s.fileMode); err != nil {
		return out, err
	}
	if len(deleted) > 0 {
		if err := s.dropKeys(dir, deleted); err != nil {
			return out, err
		}
	}
	return out, syncDir(dir)
}

// collect deletes files/<name> unless a sync was handed it since cutoff,
// returning its size, or -1 when it was kept.
func (s *Sink) collect(dir, name string, cutoff time.Time) (int64, error) {
	path := filepath.Join(dir, name)
	info, err := os.Stat(path)
	if notExist(err) {
		return -1, nil
	}
	if err != nil {
		return -1, fmt.Errorf("filesink: collect %s: %w", name, err)
	}
	if info.ModTime().After(cutoff) {
		return -1, nil
	}
	aside := filepath.Join(dir, ".gc-"+name)
	if err := os.Rename(path, aside); err != nil {
		return -1, fmt.Errorf("filesink: collect %s: %w", name, err)
	}
	if info, err = os.Stat(aside); err != nil {
		return -1, fmt.Errorf("filesink: collect %s: %w", name, err)
	}
	if info.ModTime().After(cutoff) {
		// Handed out between the two looks: put it back, unless a put of
		// the same content stored it again meanwhile.
		if err := os.Link(aside, path); err != nil && !errors.Is(err, os.ErrExist) {
			return -1, fmt.Errorf("filesink: collect %s: %w", name, err)
		}
		_ = os.Remove(aside)
		return -1, nil
	}
	if err := os.Remove(aside); err != nil {
		return -1, fmt.Errorf("filesink: collect %s: %w", name, err)
	}
	return info.Size(), nil
}

// dropKeys removes the key index entries that name deleted files.
func (s *Sink) dropKeys(dir string, deleted map[string]bool) error {
	kdir := filepath.Join(dir, ".keys")
	entries, err := os.ReadDir(kdir)
	if notExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("filesink: collect files: %w", err)
	}
	for _, e := range entries {
		p := filepath.Join(kdir, e.Name())
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		var l record.FileLink
		if json.Unmarshal(b, &l) == nil && deleted[l.Name()] {
			if _, err := os.Stat(filepath.Join(dir, l.Name())); notExist(err) {
				_ = os.Remove(p)
			}
		}
	}
	return nil
}

var _ record.FileCollector = (*Sink)(nil)
