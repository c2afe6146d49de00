package filesink

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/notionsync/notionsync/sync/sink/record"
)

// Reserved members of a stored document.
const (
	metaKey   = "_notionsync"
	blocksKey = "blocks"
)

// formatVersion is written in every document's metadata.
const formatVersion = 1

// meta is the "_notionsync" member of a stored document.
type meta struct {
	Format            int           `json:"format"`
	Kind              record.Kind   `json:"kind"`
	ConnectionID      string        `json:"connection_id"`
	ID                string        `json:"id"`
	ParentType        string        `json:"parent_type,omitempty"`
	ParentID          string        `json:"parent_id,omitempty"`
	DatabaseID        string        `json:"database_id,omitempty"`
	DataSourceID      string        `json:"data_source_id,omitempty"`
	Title             string        `json:"title"`
	LastEditedTime    time.Time     `json:"last_edited_time,omitzero"`
	SyncedAt          time.Time     `json:"synced_at,omitzero"`
	Deleted           bool          `json:"deleted"`
	DeletedAt         time.Time     `json:"deleted_at,omitzero"`
	DeletedReason     record.Reason `json:"deleted_reason,omitempty"`
	Unshared          bool          `json:"unshared"`
	UnsharedAt        time.Time     `json:"unshared_at,omitzero"`
	VersionEditedAt   time.Time     `json:"version_edited_at"`
	VersionObservedAt time.Time     `json:"version_observed_at"`
	// Files maps the page's Notion-hosted file references to the stored
	// files (files/<sha256><ext>); the object keeps Notion's URLs.
	Files []record.FileLink `json:"files,omitempty"`
}

func (m *meta) state() record.State {
	return record.State{
		Version:        record.Version{EditedAt: m.VersionEditedAt, ObservedAt: m.VersionObservedAt},
		LastEditedTime: m.LastEditedTime,
		SyncedAt:       m.SyncedAt,
		DeletedAt:      m.DeletedAt,
		UnsharedAt:     m.UnsharedAt,
		DeletedReason:  m.DeletedReason,
	}
}

func (m *meta) setVersion(v record.Version) {
	m.VersionEditedAt, m.VersionObservedAt = v.EditedAt, v.ObservedAt
}

// document is a stored page or database document in memory.
type document struct {
	meta   meta
	object []record.Field  // the Notion object's members (reserved ones excluded)
	blocks json.RawMessage // pages only: the encoded block tree
}

// objectFields splits a Notion object into members, dropping the members
// this package reserves (Notion's objects have none of them).
func objectFields(object json.RawMessage) ([]record.Field, error) {
	fields, err := record.ObjectFields(object)
	if err != nil {
		return nil, err
	}
	kept := fields[:0]
	for _, f := range fields {
		if f.Key != metaKey && f.Key != blocksKey {
			kept = append(kept, f)
		}
	}
	return kept, nil
}

// encode renders d as an indented JSON document ending in a newline.
func (d *document) encode() ([]byte, error) {
	m, err := json.Marshal(&d.meta)
	if err != nil {
		return nil, fmt.Errorf("filesink: encode metadata: %w", err)
	}
	fields := make([]record.Field, 0, len(d.object)+2)
	fields = append(fields, record.Field{Key: metaKey, Value: m})
	fields = append(fields, d.object...)
	if d.meta.Kind == record.KindPage {
		blocks := d.blocks
		if len(blocks) == 0 {
			blocks = json.RawMessage("[]")
		}
		fields = append(fields, record.Field{Key: blocksKey, Value: blocks})
	}
	compact := record.AppendObject(nil, fields)
	var out bytes.Buffer
	out.Grow(len(compact) + len(compact)/4)
	if err := json.Indent(&out, compact, "", "  "); err != nil {
		return nil, fmt.Errorf("%w: %v", record.ErrInvalidObject, err)
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// readMeta reads only the metadata of the document at path, which is its
// first member when written by this package. A missing file yields
// fs.ErrNotExist.
func readMeta(path string) (meta, error) {
	f, err := os.Open(path)
	if err != nil {
		return meta{}, err
	}
	defer f.Close()
	dec := json.NewDecoder(f)
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return meta{}, corrupt(path, err)
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return meta{}, corrupt(path, err)
		}
		if tok == metaKey {
			var m meta
			if err := dec.Decode(&m); err != nil {
				return meta{}, corrupt(path, err)
			}
			return m, nil
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return meta{}, corrupt(path, err)
		}
	}
	return meta{}, corrupt(path, errors.New("no "+metaKey+" member"))
}

// readDocument reads the whole document at path.
func readDocument(path string) (*document, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	fields, err := record.ObjectFields(data)
	if err != nil {
		return nil, corrupt(path, err)
	}
	d := &document{}
	found := false
	for _, f := range fields {
		switch f.Key {
		case metaKey:
			if err := json.Unmarshal(f.Value, &d.meta); err != nil {
				return nil, corrupt(path, err)
			}
			found = true
		case blocksKey:
			d.blocks = f.Value
		default:
			d.object = append(d.object, f)
		}
	}
	if !found {
		return nil, corrupt(path, errors.New("no "+metaKey+" member"))
	}
	return d, nil
}

func corrupt(path string, err error) error {
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("filesink: corrupt document %s: %w", path, err)
}

func notExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
