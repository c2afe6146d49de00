package fidelity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/notionsync/notionsync/internal/notionfake"
)

// FileStore reads a file sink's root (package filesink's layout:
// <root>/<connection>/pages/<id>.json and databases/<id>.json, each with its
// "_notionsync" member).
//
// Data sources are <root>/<connection>/data_sources/<id>.json, with the
// same "_notionsync" member.
type FileStore struct {
	Root string
}

// fileDoc is what FileStore reads of a document.
type fileDoc struct {
	Meta *struct {
		Deleted        bool      `json:"deleted"`
		Unshared       bool      `json:"unshared"`
		LastEditedTime time.Time `json:"last_edited_time"`
	} `json:"_notionsync"`
	Properties map[string]json.RawMessage `json:"properties"`
}

// Stored implements Store.
func (f FileStore) Stored(_ context.Context, connectionID string) ([]Stored, error) {
	dirs := map[string]string{"pages": notionfake.TruthPage, "databases": notionfake.TruthDatabase,
		"data_sources": notionfake.TruthDataSource}
	var out []Stored
	for dir, kind := range dirs {
		path := filepath.Join(f.Root, connectionID, dir)
		entries, err := os.ReadDir(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("fidelity: %w", err)
		}
		for _, e := range entries {
			id, ok := strings.CutSuffix(e.Name(), ".json")
			if !ok || strings.HasPrefix(id, ".") || e.IsDir() {
				continue // Markdown, temporary files
			}
			b, err := os.ReadFile(filepath.Join(path, e.Name()))
			if err != nil {
				return nil, fmt.Errorf("fidelity: %w", err)
			}
			var doc fileDoc
			if err := json.Unmarshal(b, &doc); err != nil || doc.Meta == nil {
				return nil, fmt.Errorf("fidelity: %s/%s: not a sink document (%v)", dir, e.Name(), err)
			}
			out = append(out, Stored{Kind: kind, ID: strings.ToLower(id), LastEditedTime: doc.Meta.LastEditedTime,
				Deleted: doc.Meta.Deleted, Unshared: doc.Meta.Unshared, Properties: doc.Properties})
		}
	}
	return out, nil
}

// Querier is what PGStore needs of a connection or pool (*pgxpool.Pool and
// *pgx.Conn both have it).
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// PGStore reads a PostgreSQL sink (package pgsink's tables pages,
// databases and data_sources).
type PGStore struct {
	DB Querier
}

// Stored implements Store.
func (p PGStore) Stored(ctx context.Context, connectionID string) ([]Stored, error) {
	var out []Stored
	queries := []struct{ kind, sql string }{
		{notionfake.TruthPage, `SELECT page_id::text, last_edited_time, deleted_at IS NOT NULL, unshared_at IS NOT NULL, properties
			FROM pages WHERE connection_id = $1`},
		{notionfake.TruthDatabase, `SELECT database_id::text, last_edited_time, deleted_at IS NOT NULL, unshared_at IS NOT NULL, NULL::jsonb
			FROM databases WHERE connection_id = $1`},
		{notionfake.TruthDataSource, `SELECT data_source_id::text, last_edited_time, deleted_at IS NOT NULL, unshared_at IS NOT NULL, NULL::jsonb
			FROM data_sources WHERE connection_id = $1`},
	}
	for _, q := range queries {
		rows, err := p.DB.Query(ctx, q.sql, connectionID)
		if err != nil {
			return nil, fmt.Errorf("fidelity: list %ss: %w", q.kind, err)
		}
		for rows.Next() {
			var (
				s      = Stored{Kind: q.kind}
				edited *time.Time
				props  []byte
			)
			if err := rows.Scan(&s.ID, &edited, &s.Deleted, &s.Unshared, &props); err != nil {
				rows.Close()
				return nil, fmt.Errorf("fidelity: list %ss: %w", q.kind, err)
			}
			if edited != nil {
				s.LastEditedTime = *edited
			}
			if len(props) > 0 {
				if err := json.Unmarshal(props, &s.Properties); err != nil {
					rows.Close()
					return nil, fmt.Errorf("fidelity: %s %s: properties: %w", q.kind, s.ID, err)
				}
			}
			out = append(out, s)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("fidelity: list %ss: %w", q.kind, err)
		}
	}
	return out, nil
}
