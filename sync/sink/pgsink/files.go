package pgsink

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"
	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	// file:// blob URLs. Cloud drivers (s3://, gs://, azblob://) are
	// registered by the binaries that want them (package blobdrivers).
	_ "gocloud.dev/blob/fileblob"

	"github.com/notionsync/notionsync/sync/sink/record"
)

// ErrNoBlobStore is returned by the file methods of a sink opened without
// Options.BlobURL.
var ErrNoBlobStore = errors.New("pgsink: no blob store configured (BlobURL)")

// Files: the bytes go to the blob store opened from Options.BlobURL (any
// gocloud.dev/blob URL: file:///dir, s3://bucket?region=..., gs://bucket,
// azblob://container), under
//
//	<connection_id>/files/<sha256><ext>   committed content
//	<connection_id>/tmp/<random>         a put in progress
//
// and the tables files and file_refs (migration 0004) hold what is stored
// and which objects reference it. A put streams into the temporary blob
// while hashing, then copies it to its hash's key (a server-side copy on
// S3 and GCS) unless that content is stored already, and deletes it.

func (s *Sink) openBucket(ctx context.Context, u string) error {
	if u == "" {
		return nil
	}
	b, err := blob.OpenBucket(ctx, u)
	if err != nil {
		// The URL may carry credentials: name only what failed.
		return fmt.Errorf("pgsink: open blob store: %v", gcerrors.Code(err))
	}
	s.bucket = b
	return nil
}

// FilesEnabled reports whether the sink has a blob store (Options.BlobURL):
// without one, file downloads are off.
func (s *Sink) FilesEnabled() bool { return s.bucket != nil }

// PutFile implements record.FileStore.
func (s *Sink) PutFile(ctx context.Context, conn string, fm record.FileMeta, r io.Reader) (record.FileLink, error) {
	if s.bucket == nil {
		return record.FileLink{}, ErrNoBlobStore
	}
	if err := record.ValidateConnectionID(conn); err != nil {
		return record.FileLink{}, err
	}
	objectID, err := record.NormalizeID(fm.ObjectID)
	if err != nil || fm.Key == "" {
		return record.FileLink{}, fmt.Errorf("pgsink: %w: key %q, object %q", record.ErrInvalidFile, fm.Key, fm.ObjectID)
	}
	var rnd [12]byte
	_, _ = rand.Read(rnd[:])
	tmp := conn + "/tmp/" + hex.EncodeToString(rnd[:])
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := s.bucket.NewWriter(wctx, tmp, &blob.WriterOptions{ContentType: fm.ContentType})
	if err != nil {
		return record.FileLink{}, fmt.Errorf("pgsink: blob writer: %w", err)
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, h), r)
	if err != nil {
		cancel() // a cancelled writer discards what it wrote
		_ = w.Close()
		return record.FileLink{}, err
	}
	if err := w.Close(); err != nil {
		return record.FileLink{}, fmt.Errorf("pgsink: blob write: %w", err)
	}
	defer func() { _ = s.bucket.Delete(context.WithoutCancel(ctx), tmp) }()
	link := record.FileLink{Key: fm.Key, SHA256: hex.EncodeToString(h.Sum(nil)), Ext: record.FileExt(fm.Name, fm.ContentType),
		Size: n, ContentType: fm.ContentType}
	key := conn + "/files/" + link.Name()
	// The rows first, then the blob, in one transaction: the files row is
	// locked from its insert to the commit, so a garbage collection of
	// the same content (which locks the row, deletes the blob, then the
	// row) either finished before (the blob is copied again here) or
	// waits and finds the file referenced.
	err = s.withConn(ctx, func(c *pgx.Conn) error {
		return pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
			err := tx.QueryRow(ctx, `INSERT INTO files (connection_id, sha256, ext, size, content_type, blob_key)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (connection_id, sha256, ext) DO UPDATE SET unreferenced_since = NULL
RETURNING (xmax = 0)`, conn, link.SHA256, link.Ext, link.Size, sanitizeText(link.ContentType), key).Scan(&link.Added)
			if err != nil {
				return err
			}
			_, err = tx.Exec(ctx, `INSERT INTO file_refs (connection_id, ref_key, object_id, sha256, ext) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (connection_id, ref_key, object_id) DO UPDATE SET sha256 = excluded.sha256, ext = excluded.ext, updated_at = now()`,
				conn, sanitizeText(fm.Key), objectID, link.SHA256, link.Ext)
			if err != nil {
				return err
			}
			exists, err := s.bucket.Exists(ctx, key)
			if err != nil {
				return fmt.Errorf("blob exists: %w", err)
			}
			if !exists {
				if err := s.bucket.Copy(ctx, key, tmp, nil); err != nil {
					return fmt.Errorf("blob copy: %w", err)
				}
			}
			return nil
		})
	})
	if err != nil {
		return record.FileLink{}, fmt.Errorf("pgsink: record file: %w", err)
	}
	return link, nil
}

// FileByKey implements record.FileStore.
func (s *Sink) FileByKey(ctx context.Context, conn, key string) (record.FileLink, error) {
	if s.bucket == nil {
		return record.FileLink{}, ErrNoBlobStore
	}
	l := record.FileLink{Key: key}
	err := s.withConn(ctx, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, `SELECT f.sha256, f.ext, f.size, f.content_type FROM file_refs r
JOIN files f USING (connection_id, sha256, ext) WHERE r.connection_id = $1 AND r.ref_key = $2 LIMIT 1`,
			conn, sanitizeText(key)).Scan(&l.SHA256, &l.Ext, &l.Size, &l.ContentType)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return record.FileLink{}, fmt.Errorf("file %q: %w", key, record.ErrNotFound)
	}
	if err != nil {
		return record.FileLink{}, fmt.Errorf("pgsink: file by key: %w", err)
	}
	return l, nil
}

// FileUsage implements record.FileStore.
func (s *Sink) FileUsage(ctx context.Context, conn string) (int64, error) {
	var n int64
	err := s.withConn(ctx, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, `SELECT coalesce(sum(size), 0)::bigint FROM files WHERE connection_id = $1`, conn).Scan(&n)
	})
	if err != nil {
		return 0, fmt.Errorf("pgsink: file usage: %w", err)
	}
	return n, nil
}

// OpenFile implements record.FileStore.
func (s *Sink) OpenFile(ctx context.Context, conn string, l record.FileLink) (io.ReadCloser, error) {
	if s.bucket == nil {
		return nil, ErrNoBlobStore
	}
	if err := record.ValidateConnectionID(conn); err != nil {
		return nil, err
	}
	if !record.ValidFileLink(l) {
		return nil, fmt.Errorf("pgsink: %w: %q", record.ErrInvalidFile, l.SHA256+l.Ext)
	}
	r, err := s.bucket.NewReader(ctx, conn+"/files/"+l.Name(), nil)
	if gcerrors.Code(err) == gcerrors.NotFound {
		return nil, fmt.Errorf("file %s: %w", l.Name(), record.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("pgsink: blob read: %w", err)
	}
	return r, nil
}

// recordRefs records that object objectID references its files (the
// Files of its record): file_refs rows for keys it found stored already.
func recordRefs(ctx context.Context, c *pgx.Conn, conn, objectID string, links []record.FileLink) error {
	for _, l := range links {
		_, err := c.Exec(ctx, `INSERT INTO file_refs (connection_id, ref_key, object_id, sha256, ext)
SELECT $1, $2, $3, $4, $5 WHERE EXISTS (SELECT 1 FROM files WHERE connection_id = $1 AND sha256 = $4 AND ext = $5)
ON CONFLICT (connection_id, ref_key, object_id) DO UPDATE SET sha256 = excluded.sha256, ext = excluded.ext, updated_at = now()`,
			conn, sanitizeText(l.Key), objectID, l.SHA256, l.Ext)
		if err != nil {
			return err
		}
	}
	return nil
}

// putRefs records the file references of an object just written, and
// drops the ones it no longer has (a removed block, a changed files value
// or icon): the files they named may become orphans (CollectFiles).
func putRefs(ctx context.Context, c *pgx.Conn, conn, objectID string, links []record.FileLink) error {
	keys := make([]string, len(links))
	for i, l := range links {
		keys[i] = sanitizeText(l.Key)
	}
	if _, err := c.Exec(ctx, `DELETE FROM file_refs WHERE connection_id = $1 AND object_id = $2 AND NOT (ref_key = ANY($3))`,
		conn, objectID, keys); err != nil {
		return fmt.Errorf("file references: %w", err)
	}
	if err := recordRefs(ctx, c, conn, objectID, links); err != nil {
		return fmt.Errorf("file references: %w", err)
	}
	return nil
}

// liveRef is true for a files row f that a live object references: one
// stored and not deleted, or not stored yet (PutFile records the reference
// before the object is written).
const liveRef = `EXISTS (SELECT 1 FROM file_refs r WHERE r.connection_id = f.connection_id AND r.sha256 = f.sha256 AND r.ext = f.ext
	AND (EXISTS (SELECT 1 FROM pages o WHERE o.connection_id = r.connection_id AND o.page_id = r.object_id AND o.deleted_at IS NULL)
	  OR EXISTS (SELECT 1 FROM databases o WHERE o.connection_id = r.connection_id AND o.database_id = r.object_id AND o.deleted_at IS NULL)
	  OR EXISTS (SELECT 1 FROM data_sources o WHERE o.connection_id = r.connection_id AND o.data_source_id = r.object_id AND o.deleted_at IS NULL)
	  OR NOT (EXISTS (SELECT 1 FROM pages o WHERE o.connection_id = r.connection_id AND o.page_id = r.object_id)
	       OR EXISTS (SELECT 1 FROM databases o WHERE o.connection_id = r.connection_id AND o.database_id = r.object_id)
	       OR EXISTS (SELECT 1 FROM data_sources o WHERE o.connection_id = r.connection_id AND o.data_source_id = r.object_id))))`

// CollectFiles implements record.FileCollector. A pass marks the files no
// live object references (unreferenced_since), unmarks the ones
// referenced again, and deletes those marked for grace: each in its own
// transaction that locks the files row, re-checks it, deletes the blob,
// then the rows (the dead references and the file).
func (s *Sink) CollectFiles(ctx context.Context, conn string, grace time.Duration) (record.FileCollection, error) {
	var out record.FileCollection
	if s.bucket == nil {
		return out, ErrNoBlobStore
	}
	if err := record.ValidateConnectionID(conn); err != nil {
		return out, err
	}
	now := s.now()
	cutoff := now.Add(-grace)
	type orphan struct {
		sha, ext, blob string
		size           int64
	}
	var due []orphan
	err := s.withConn(ctx, func(c *pgx.Conn) error {
		if _, err := c.Exec(ctx, `UPDATE files f SET unreferenced_since = $2 WHERE connection_id = $1 AND unreferenced_since IS NULL AND NOT `+liveRef, conn, now); err != nil {
			return err
		}
		if _, err := c.Exec(ctx, `UPDATE files f SET unreferenced_since = NULL WHERE connection_id = $1 AND unreferenced_since IS NOT NULL AND `+liveRef, conn); err != nil {
			return err
		}
		if err := c.QueryRow(ctx, `SELECT count(*) FROM files WHERE connection_id = $1 AND unreferenced_since IS NOT NULL`, conn).Scan(&out.Orphans); err != nil {
			return err
		}
		rows, err := c.Query(ctx, `SELECT sha256, ext, blob_key, size FROM files WHERE connection_id = $1 AND unreferenced_since <= $2`, conn, cutoff)
		if err != nil {
			return err
		}
		for rows.Next() {
			var o orphan
			if err := rows.Scan(&o.sha, &o.ext, &o.blob, &o.size); err != nil {
				rows.Close()
				return err
			}
			due = append(due, o)
		}
		rows.Close()
		return rows.Err()
	})
	if err != nil {
		return out, fmt.Errorf("pgsink: collect files: %w", err)
	}
	for _, o := range due {
		var deleted bool
		err := s.withConn(ctx, func(c *pgx.Conn) error {
			return pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
				var still bool
				err := tx.QueryRow(ctx, `SELECT true FROM files f WHERE connection_id = $1 AND sha256 = $2 AND ext = $3
AND unreferenced_since <= $4 AND NOT `+liveRef+` FOR UPDATE`, conn, o.sha, o.ext, cutoff).Scan(&still)
				if errors.Is(err, pgx.ErrNoRows) {
					return nil // referenced or put again meanwhile
				}
				if err != nil {
					return err
				}
				if err := s.bucket.Delete(ctx, o.blob); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
					return fmt.Errorf("blob delete: %w", err)
				}
				if _, err := tx.Exec(ctx, `DELETE FROM file_refs WHERE connection_id = $1 AND sha256 = $2 AND ext = $3`, conn, o.sha, o.ext); err != nil {
					return err
				}
				if _, err := tx.Exec(ctx, `DELETE FROM files WHERE connection_id = $1 AND sha256 = $2 AND ext = $3`, conn, o.sha, o.ext); err != nil {
					return err
				}
				deleted = true
				return nil
			})
		})
		if err != nil {
			return out, fmt.Errorf("pgsink: collect file %s%s: %w", o.sha, o.ext, err)
		}
		if deleted {
			out.Deleted++
			out.Bytes += o.size
		}
	}
	return out, nil
}

var (
	_ record.FileStore     = (*Sink)(nil)
	_ record.FileCollector = (*Sink)(nil)
)
