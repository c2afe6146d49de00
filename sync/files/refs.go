package files

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/notionsync/notionsync/sync/sink/record"
)

// Ref is one Notion-hosted file an object references.
type Ref struct {
	// Key is the URL's stable part (record.FileKey): the same file keeps
	// it across reads, while the signed query changes.
	Key string
	// URL is the signed URL; Expiry its expiry_time (zero: unknown).
	URL    string
	Expiry time.Time
	// Name is the file's name: the block's or files value's name, else the
	// URL's last path segment.
	Name string
	// BlockID is the block that shows the file; "" for the page object
	// itself (icon, cover, files property values). A fresh URL is read
	// from it.
	BlockID string
}

// fileObject is Notion's file object: {"type": "file", "file": {...}} or
// {"type": "external", ...}.
type fileObject struct {
	Type string `json:"type"`
	Name string `json:"name"`
	File *struct {
		URL        string    `json:"url"`
		ExpiryTime time.Time `json:"expiry_time"`
	} `json:"file"`
}

func (f *fileObject) ref(blockID string) (Ref, bool) {
	if f == nil || f.Type != "file" || f.File == nil || f.File.URL == "" {
		return Ref{}, false
	}
	key := record.FileKey(f.File.URL)
	if key == "" {
		return Ref{}, false
	}
	name := f.Name
	if name == "" {
		name = lastSegment(key)
	}
	return Ref{Key: key, URL: f.File.URL, Expiry: f.File.ExpiryTime, Name: name, BlockID: blockID}, true
}

func lastSegment(key string) string {
	for i := len(key) - 1; i >= 0; i-- {
		if key[i] == '/' {
			return key[i+1:]
		}
	}
	return key
}

var expiryMember = []byte(`"expiry_time"`)

// fileBlockTypes are the block types whose payload is a file object.
var fileBlockTypes = map[string]bool{"image": true, "pdf": true, "file": true, "video": true, "audio": true}

// PageRefs returns the Notion-hosted files a page references: its icon and
// cover, its files property values and, in blocks (recursively), file
// blocks and block icons (callouts). Each key comes once (the first
// reference wins). Parts it cannot read are skipped: a malformed object
// loses no data, its file is just not downloaded.
func PageRefs(object json.RawMessage, blocks []record.Block) []Ref {
	var refs []Ref
	seen := make(map[string]bool)
	add := func(r Ref, ok bool) {
		if ok && !seen[r.Key] {
			seen[r.Key] = true
			refs = append(refs, r)
		}
	}
	var page struct {
		Icon       *fileObject `json:"icon"`
		Cover      *fileObject `json:"cover"`
		Properties map[string]struct {
			Type  string       `json:"type"`
			Files []fileObject `json:"files"`
		} `json:"properties"`
	}
	// Hosted files carry an expiry_time: objects without one (most) are
	// not decoded at all, so pages without files cost nothing here.
	if bytes.Contains(object, expiryMember) && json.Unmarshal(object, &page) == nil {
		add(page.Icon.ref(""))
		add(page.Cover.ref(""))
		for _, p := range page.Properties {
			if p.Type == "files" {
				for i := range p.Files {
					add(p.Files[i].ref(""))
				}
			}
		}
	}
	var walk func([]record.Block)
	walk = func(bs []record.Block) {
		for i := range bs {
			for _, r := range BlockRefs(&bs[i]) {
				add(r, true)
			}
			walk(bs[i].Children)
		}
	}
	walk(blocks)
	return refs
}

// SchemaRefs returns the Notion-hosted files a database or data source
// object shows: its icon and cover. (Its "properties" are a schema, whose
// files property has no values.) Each key comes once; an object it cannot
// read has none.
func SchemaRefs(object json.RawMessage) []Ref {
	if !bytes.Contains(object, expiryMember) {
		return nil
	}
	var o struct {
		Icon  *fileObject `json:"icon"`
		Cover *fileObject `json:"cover"`
	}
	if json.Unmarshal(object, &o) != nil {
		return nil
	}
	var refs []Ref
	for _, f := range []*fileObject{o.Icon, o.Cover} {
		if r, ok := f.ref(""); ok && (len(refs) == 0 || refs[0].Key != r.Key) {
			refs = append(refs, r)
		}
	}
	return refs
}

// BlockRefs returns the Notion-hosted files block b itself shows (not its
// children).
func BlockRefs(b *record.Block) []Ref {
	if !bytes.Contains(b.Raw, expiryMember) {
		return nil
	}
	var typed map[string]json.RawMessage
	if json.Unmarshal(b.Raw, &typed) != nil {
		return nil
	}
	raw, ok := typed[b.Type]
	if !ok {
		return nil
	}
	var payload struct {
		fileObject
		Icon *fileObject `json:"icon"`
	}
	if json.Unmarshal(raw, &payload) != nil {
		return nil
	}
	var out []Ref
	if fileBlockTypes[b.Type] {
		if r, ok := payload.fileObject.ref(b.ID); ok {
			out = append(out, r)
		}
	}
	if r, ok := payload.Icon.ref(b.ID); ok {
		out = append(out, r)
	}
	return out
}
