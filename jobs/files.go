package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/notionsync/notionsync/sync/files"
	"github.com/notionsync/notionsync/sync/notionclient"
	"github.com/notionsync/notionsync/sync/sink"
	"github.com/notionsync/notionsync/sync/sink/record"
)

// errRefGone: the object read again for a fresh URL no longer references
// the file (it was removed meanwhile); the next sync of the object sees
// that.
var errRefGone = errors.New("the object no longer references the file")

// DefaultFileGCGrace is Config.FileGCGrace's default. It also bounds how
// long a sync may take between looking a stored file up and writing the
// object that references it (seconds in practice) without the file being
// collected under it.
const DefaultFileGCGrace = 24 * time.Hour

// collectFiles deletes the connection's files orphaned for
// Config.FileGCGrace (record.FileCollector) and gives their bytes back to
// the connection's file quota. Run at the end of each reconciliation
// pass; a failure is logged, and the next pass tries again.
func (h *Handlers) collectFiles(ctx context.Context, log *zap.Logger, conn string) {
	if h.cfg.FileGCGrace < 0 {
		return
	}
	store, ok := h.fileStore()
	if !ok {
		return
	}
	fc, ok := store.(record.FileCollector)
	if !ok {
		return
	}
	got, err := fc.CollectFiles(ctx, conn, h.cfg.FileGCGrace)
	if err != nil {
		log.Warn("could not collect orphaned files", zap.Error(err))
	}
	if got.Bytes > 0 {
		if err := h.cfg.Files.Released(ctx, conn, got.Bytes); err != nil {
			log.Warn("could not give collected files' bytes back to the quota", zap.Error(err))
		}
	}
	if got.Orphans > 0 || got.Deleted > 0 {
		log.Info("orphaned files collected", zap.Int("orphans", got.Orphans), zap.Int("deleted", got.Deleted), zap.Int64("bytes", got.Bytes))
	}
}

// fileStore returns the sink's file store when downloads are on.
func (h *Handlers) fileStore() (record.FileStore, bool) {
	if h.cfg.Files == nil {
		return nil, false
	}
	st, ok := h.cfg.Sink.(record.FileStore)
	if fe, can := st.(interface{ FilesEnabled() bool }); ok && can && !fe.FilesEnabled() {
		return nil, false // a PostgreSQL sink without a blob store
	}
	return st, ok
}

// storeFiles stores every Notion-hosted file the page references and
// returns the links for the page record, and notes for the files it could
// not store for good (see storeRefs).
func (h *Handlers) storeFiles(ctx context.Context, log *zap.Logger, store record.FileStore, conn, pageID string,
	raw json.RawMessage, blocks []sink.Block) ([]record.FileLink, string, error) {
	return h.storeRefs(ctx, log, store, conn, pageID, files.PageRefs(raw, blocks), func(ctx context.Context, ref files.Ref) (files.Ref, error) {
		return h.freshRef(ctx, conn, pageID, ref)
	})
}

// storeSchemaFiles stores the icon and cover of a database or data source
// object (path is where it is read again for fresh URLs, label names it in
// notes), as storeFiles does a page's.
func (h *Handlers) storeSchemaFiles(ctx context.Context, log *zap.Logger, store record.FileStore, conn, id, path, label string,
	raw json.RawMessage) ([]record.FileLink, string, error) {
	return h.storeRefs(ctx, log, store, conn, id, files.SchemaRefs(raw), func(ctx context.Context, ref files.Ref) (files.Ref, error) {
		raw, err := h.cfg.Notion.Do(ctx, conn, http.MethodGet, path, nil)
		if notionclient.IsNotFound(err) || permanentAnswer(err, false) {
			return files.Ref{}, &PermanentError{Object: "file " + describeRef(ref) + " of " + label, Err: err}
		}
		if err != nil {
			return files.Ref{}, err
		}
		for _, r := range files.SchemaRefs(raw) {
			if r.Key == ref.Key {
				return r, nil
			}
		}
		return files.Ref{}, errRefGone
	})
}

// storeRefs stores refs, files of the object objectID, and returns their
// links for the object's record, and notes for the files it could not
// store for good (a cap, the quota, a host not allowed, an URL still
// refused after a re-read): those become the object's per-object error. A
// file already stored under the reference's key is not fetched again: the
// key (the URL without its signed query) only changes when the object
// references another file. An expired URL is replaced by the one fresh
// returns (the object read again). Transient failures (network, 5xx, the
// sink) are returned: the task is retried.
func (h *Handlers) storeRefs(ctx context.Context, log *zap.Logger, store record.FileStore, conn, objectID string,
	refs []files.Ref, fresh func(context.Context, files.Ref) (files.Ref, error)) ([]record.FileLink, string, error) {
	if len(refs) == 0 {
		return nil, "", nil
	}
	var (
		links   []record.FileLink
		notes   []string
		fetched int
	)
	for _, ref := range refs {
		l, err := store.FileByKey(ctx, conn, ref.Key)
		if err == nil {
			links = append(links, l)
			continue
		}
		if !errors.Is(err, record.ErrNotFound) {
			return nil, "", fmt.Errorf("sink: %w", err)
		}
		l, err = h.cfg.Files.Download(ctx, store, conn, objectID, ref)
		if errors.Is(err, files.ErrExpired) {
			// The URL died before its download (a long walk, a retry):
			// the object, read again, carries a fresh one.
			var nref files.Ref
			if nref, err = fresh(ctx, ref); err == nil {
				log.Debug("file URL expired; downloading from a fresh URL", zap.String("file", describeRef(ref)))
				l, err = h.cfg.Files.Download(ctx, store, conn, objectID, nref)
			}
		}
		switch {
		case err == nil:
			fetched++
			links = append(links, l)
		case files.Permanent(err) || errors.Is(err, files.ErrExpired) || errors.Is(err, errRefGone) || errorKind(err) == ErrorPermanent:
			notes = append(notes, fmt.Sprintf("file %s not stored: %v", describeRef(ref), err))
		default:
			return nil, "", fmt.Errorf("file %s: %w", describeRef(ref), err)
		}
	}
	if fetched > 0 {
		log.Debug("object files stored", zap.Int("downloaded", fetched), zap.Int("files", len(refs)))
	}
	return links, strings.Join(notes, "; "), nil
}

// describeRef names a file reference without its URL (whose query is a
// credential).
func describeRef(r files.Ref) string {
	if r.BlockID != "" {
		return fmt.Sprintf("%q of block %s", r.Name, r.BlockID)
	}
	return fmt.Sprintf("%q of the object", r.Name)
}

// freshRef reads the object that shows ref again (its block, or the page
// for icons, covers and files values) and returns the reference with the
// same key, carrying a fresh URL. This is a Notion request, paced by the
// connection's budget like any other.
func (h *Handlers) freshRef(ctx context.Context, conn, pageID string, ref files.Ref) (files.Ref, error) {
	path := "/v1/pages/" + url.PathEscape(pageID)
	if ref.BlockID != "" {
		path = "/v1/blocks/" + url.PathEscape(ref.BlockID)
	}
	raw, err := h.cfg.Notion.Do(ctx, conn, http.MethodGet, path, nil)
	if notionclient.IsNotFound(err) || permanentAnswer(err, false) {
		return files.Ref{}, &PermanentError{Object: "file " + describeRef(ref), Err: err}
	}
	if err != nil {
		return files.Ref{}, err
	}
	var refs []files.Ref
	if ref.BlockID != "" {
		b, err := record.BlockFromRaw(raw)
		if err != nil {
			return files.Ref{}, fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		refs = files.BlockRefs(&b)
	} else {
		refs = files.PageRefs(raw, nil)
	}
	for _, r := range refs {
		if r.Key == ref.Key {
			return r, nil
		}
	}
	return files.Ref{}, errRefGone
}
