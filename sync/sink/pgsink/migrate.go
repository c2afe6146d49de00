package pgsink

import (
	"context"
	"embed"
	"fmt"
	"hash/fnv"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migration is one embedded migrations/NNNN_name.sql file.
type migration struct {
	version int
	name    string
	sql     string
}

// loadMigrations returns the embedded migrations in version order.
func loadMigrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	var out []migration
	seen := map[int]string{}
	for _, e := range entries {
		name := e.Name()
		num, rest, ok := strings.Cut(strings.TrimSuffix(name, ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("pgsink: migration file %q is not named NNNN_name.sql", name)
		}
		if prev, dup := seen[v]; dup {
			return nil, fmt.Errorf("pgsink: migrations %q and %q share version %d", prev, name, v)
		}
		seen[v] = name
		body, err := fs.ReadFile(migrationFiles, path.Join("migrations", name))
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: rest, sql: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out, nil
}

// advisoryKey is the pg_advisory_xact_lock key serializing migrations of
// one schema ("" = the connection's default).
func advisoryKey(schema string) int64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte("notionsync/pgsink/migrate/" + schema))
	return int64(h.Sum64())
}

// migrate brings the schema up to date in one transaction holding an
// advisory lock, so that several processes opening the sink at once apply
// each migration exactly once. It returns the versions it applied.
func migrate(ctx context.Context, conn *pgx.Conn, schema string, log *zap.Logger) ([]int, error) {
	migrations, err := loadMigrations()
	if err != nil {
		return nil, err
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("pgsink: migrate: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", advisoryKey(schema)); err != nil {
		return nil, fmt.Errorf("pgsink: migrate: advisory lock: %w", err)
	}
	if schema != "" {
		if _, err := tx.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{schema}.Sanitize()); err != nil {
			return nil, fmt.Errorf("pgsink: migrate: create schema: %w", err)
		}
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    integer     PRIMARY KEY,
	name       text        NOT NULL,
	applied_at timestamptz NOT NULL DEFAULT now()
)`); err != nil {
		return nil, fmt.Errorf("pgsink: migrate: create schema_migrations: %w", err)
	}
	rows, err := tx.Query(ctx, "SELECT version FROM schema_migrations")
	if err != nil {
		return nil, fmt.Errorf("pgsink: migrate: %w", err)
	}
	applied, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return nil, fmt.Errorf("pgsink: migrate: %w", err)
	}
	done := make(map[int]bool, len(applied))
	latest := 0
	for _, v := range applied {
		done[int(v)] = true
		latest = max(latest, int(v))
	}
	if known := migrations[len(migrations)-1].version; latest > known {
		log.Warn("pgsink: database schema is newer than this program",
			zap.Int("schema_version", latest), zap.Int("program_version", known))
	}
	var ran []int
	for _, m := range migrations {
		if done[m.version] {
			continue
		}
		if _, err := tx.Exec(ctx, m.sql); err != nil {
			return nil, fmt.Errorf("pgsink: migration %d (%s): %w", m.version, m.name, err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.version, m.name); err != nil {
			return nil, fmt.Errorf("pgsink: migration %d (%s): %w", m.version, m.name, err)
		}
		ran = append(ran, m.version)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("pgsink: migrate: commit: %w", err)
	}
	for _, v := range ran {
		log.Info("pgsink: applied migration", zap.Int("version", v))
	}
	return ran, nil
}
