package record

import (
	"context"
	"errors"
	"io"
	"mime"
	"net/url"
	"path"
	"regexp"
	"strings"
	"time"
)

// Files: a Notion-hosted file (a file/image/pdf/video/audio block, a page
// icon or cover, a files property value) is referenced by a signed URL that
// expires an hour after the request that returned it. Sinks that implement
// FileStore keep the bytes, content-addressed by sha-256, and a page records
// which stored file each of its references is (Page.Files).

// FileLink maps one file reference of a page to the stored file.
type FileLink struct {
	// Key is the reference's stable part (FileKey of its URL).
	Key string `json:"key"`
	// SHA256 is the hex sha-256 of the bytes; Ext the stored file's
	// extension ("" or ".png").
	SHA256 string `json:"sha256"`
	Ext    string `json:"ext,omitempty"`
	// Size is the file's length in bytes; ContentType as served.
	Size        int64  `json:"size"`
	ContentType string `json:"content_type,omitempty"`
	// Added is set by FileStore.PutFile when the put stored new bytes
	// (false: the same content was stored already). Not stored.
	Added bool `json:"-"`
}

// Name is the stored file's name: <sha256><ext>.
func (l FileLink) Name() string { return l.SHA256 + l.Ext }

// FileMeta describes a file handed to FileStore.PutFile.
type FileMeta struct {
	// Key is the reference's stable key (FileKey); ObjectID the page that
	// references it.
	Key, ObjectID string
	// Name is the file's name as Notion gave it (the last path segment of
	// its URL): its extension names the stored file's.
	Name string
	// ContentType is the Content-Type the file was served with.
	ContentType string
}

// FileStore stores file bytes for a sink, content-addressed. Safe for
// concurrent use.
type FileStore interface {
	// PutFile streams r (never held whole in memory) into the store:
	// hashed while written to a temporary object, then committed under its
	// sha-256, once per connection however often it is put; and records
	// that meta.Key names it. A read error of r (a size cap, say) aborts
	// the put, leaves nothing behind and is returned as is.
	PutFile(ctx context.Context, connectionID string, meta FileMeta, r io.Reader) (FileLink, error)
	// FileByKey returns the file stored for reference key, or ErrNotFound.
	FileByKey(ctx context.Context, connectionID, key string) (FileLink, error)
	// FileUsage returns the bytes of the connection's stored files.
	FileUsage(ctx context.Context, connectionID string) (int64, error)
	// OpenFile opens a stored file by sha-256 and extension (FileLink.Name).
	OpenFile(ctx context.Context, connectionID string, link FileLink) (io.ReadCloser, error)
}

// ErrInvalidFile is returned for a FileLink or FileMeta a store cannot use.
var ErrInvalidFile = errors.New("invalid file")

// FileKey returns the stable part of a file URL: scheme, lowercase host and
// path, without the query (which carries the signature and the expiry and
// changes on every read of the object). "" for a URL that is not absolute.
func FileKey(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return ""
	}
	return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host) + u.EscapedPath()
}

var extRE = regexp.MustCompile(`^\.[a-z0-9]{1,10}$`)

// FileExt returns the extension a stored file gets: the name's, when it is
// short and alphanumeric, else one for contentType, else "". The result is
// safe in a file name.
func FileExt(name, contentType string) string {
	if ext := strings.ToLower(path.Ext(name)); extRE.MatchString(ext) {
		return ext
	}
	if mt, _, err := mime.ParseMediaType(contentType); err == nil {
		if exts, _ := mime.ExtensionsByType(mt); len(exts) > 0 && extRE.MatchString(exts[0]) {
			return exts[0]
		}
	}
	return ""
}

var shaRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// ValidFileLink reports whether l's SHA256 and Ext are safe to use in a
// path.
func ValidFileLink(l FileLink) bool {
	return shaRE.MatchString(l.SHA256) && (l.Ext == "" || extRE.MatchString(l.Ext))
}

// FileCollection is what one FileCollector.CollectFiles pass did.
type FileCollection struct {
	// Orphans is the number of stored files no live object references
	// (deleted or not yet); Deleted how many of them the pass deleted,
	// Bytes their size.
	Orphans, Deleted int
	Bytes            int64
}

// FileCollector deletes a connection's orphaned files: stored files that
// no live object references any more (the block that showed it removed,
// the page tombstoned, a files value or an icon changed). Both backends
// implement it; assert it on the Sink.
type FileCollector interface {
	// CollectFiles deletes the connection's files that have been
	// orphaned for at least grace, measured from the first pass that
	// found them orphaned (and, in the file sink, from the last time a
	// sync was handed the file: FileByKey, PutFile). A sync that looked a
	// file up writes its object long before grace has passed, so the
	// reference it adds is never to a deleted file; a file put again
	// meanwhile is kept. Safe to run while syncs write.
	CollectFiles(ctx context.Context, connectionID string, grace time.Duration) (FileCollection, error)
}
