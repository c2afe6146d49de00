// Package pgsink stores Notion pages, databases and data sources in
// PostgreSQL (pgx/v5).
//
// # Schema
//
// Open creates or migrates the schema itself: the SQL files embedded from
// migrations/ are applied in version order, each recorded in
// schema_migrations, all in one transaction holding a transaction-scoped
// advisory lock (keyed by the target schema), so that workers starting at the
// same time apply each migration exactly once and never see a half-migrated
// schema. Tables:
//
//   - pages (connection_id, page_id) primary key; parent_type, parent_id,
//     database_id, data_source_id (the row's data source, migration 2),
//     title, last_edited_time, properties (jsonb: the page's
//     properties), object (jsonb: the page object), blocks (jsonb: the block
//     tree, each block with a "children" array), synced_at, deleted_at
//     (tombstone), deleted_reason (trashed, unshared, restricted; NULL for
//     live rows and older tombstones; migration 0003), unshared_at (404),
//     version_edited_at and
//     version_observed_at (the Version of the last applied change), updated_at.
//   - databases, likewise, with schema (jsonb: the database's properties)
//     and no blocks. Under Notion-Version 2025-09-03 a database is a
//     container: object keeps its data_sources list and schema is NULL.
//   - data_sources (connection_id, data_source_id) primary key (migration
//     2): database_id (the container), title, last_edited_time, schema
//     (jsonb: the data source's properties), object, and the same
//     synced_at, tombstone, unshared and version columns. Rows reference
//     it by pages.data_source_id (by convention, not a foreign key: rows
//     and data sources arrive in any order).
//   - users (connection_id, user_id) primary key; type, name, avatar_url,
//     email, object (jsonb), position, synced_at, removed_at; with
//     user_listings (the synced_at of each connection's latest listing)
//     and the view page_people, which joins people, created_by and
//     last_edited_by values with users (migration 0005; PutUsers).
//
// Migration 2 adds data_sources and pages.data_source_id and rewrites no
// row: rows stored before it (read with Notion-Version 2022-06-28, which
// names no data source) keep data_source_id NULL until their next sync,
// or until their database's sole data source is stored
// (record.DataSource.SoleSource), which assigns it to them without
// touching their version. With several data sources nothing is guessed.
//
// Rows of a data source:
//
//	SELECT p.page_id, p.title, p.properties
//	FROM pages p JOIN data_sources ds USING (connection_id, data_source_id)
//	WHERE ds.database_id = $1 AND p.deleted_at IS NULL;
//
// # Writes
//
// PutPage and PutDatabase are one INSERT ... ON CONFLICT DO UPDATE whose
// WHERE compares the incoming Version with the stored one (see package
// record): an older version never overwrites, ties go to the later fetch,
// concurrent writers of one row are serialized by PostgreSQL's row lock and
// the newest version wins in any arrival order. Deletions are tombstones:
// deleted_at is set, the row and its content are kept. MarkUnshared sets
// unshared_at. Tombstone sets deleted_at and deleted_reason (and
// unshared_at for the reason unshared) with the stored edit time observed
// at the confirming GET as its version, so a later fetch restores the row.
//
// # Views for analysts
//
// Each data source gets a view, ds_<first 8 hex digits of its id>_<slug of
// its title> (ds_<all 32 hex digits> if another data source's view holds
// that name), with one row per live row (tombstoned rows are excluded: a
// view has no deleted column; query pages for those) and columns
// connection_id, page_id, page_last_edited_time, then one per property in
// schema order, typed by the property's type:
//
//	title, rich_text                  text (the plain text)
//	number                            numeric
//	checkbox                          boolean
//	date                              timestamptz <col> (start) and <col>_end
//	select, status, url, email,
//	phone_number                      text
//	multi_select                      text[] (option names)
//	people                            text[] <col> (user ids) and
//	                                  text[] <col>_names (same order)
//	relation                          text[] (page ids)
//	created_by, last_edited_by        text <col> (user id) and <col>_name
//	created_time, last_edited_time    timestamptz
//	formula, rollup                   jsonb (the result: the schema does
//	                                  not say its type)
//	others (files, unique_id, ...)    jsonb (the property value)
//
// A name is the synced user's (table users, joined on the connection and
// id), else the name or email the value carries, else the id: what the
// Markdown shows.
//
// Column names are the property names lowercased with anything but
// [a-z0-9] replaced by "_", at most 59 bytes, made distinct with _2, _3
// ("property" when nothing is left); they, and the JSON keys the view
// reads, reach SQL only as quoted identifiers and quoted literals, so a
// property name cannot change the statement. PutDataSource re-creates the
// view in the transaction that stores the schema (a reader never sees a
// view that disagrees with it); a deleted or archived data source loses
// its view. Each view's comment names its data source, which is how a
// renamed data source's old view is found and dropped. A date or time a
// row holds that PostgreSQL cannot parse makes a SELECT of that column
// fail (Notion sends ISO 8601).
//
// # Text PostgreSQL cannot hold
//
// jsonb and text cannot hold U+0000; jsonb also rejects unpaired UTF-16
// surrogate escapes, and both reject invalid UTF-8. Notion text may contain
// any of these, so before storing, "\u0000" escapes and unpaired surrogate
// escapes in JSON become "\ufffd", NUL characters in text columns and invalid
// UTF-8 anywhere become U+FFFD. Everything else is stored as Notion returned
// it (jsonb keeps the JSON value, not its formatting or key order).
//
// # Connections and concurrency
//
// Connections come from a github.com/jackc/pgx/v5/pgxpool pool of at most
// Options.MaxConns connections. pgxpool is used rather than a pool of our
// own because it is maintained with pgx and already gets right what a
// hand-written pool must re-prove: health checks of idle connections,
// discarding connections left broken or inside a transaction, connection
// lifetimes, and a Close that waits for connections in use. The DSN may set
// pgxpool's pool_* parameters; Options.MaxConns overrides pool_max_conns.
// Options.Schema is a search_path startup parameter of every connection.
// Migrations run on one dedicated connection acquired from the pool, so the
// transaction holding the advisory lock never changes connection.
//
// All methods are safe for concurrent use by many goroutines and many
// processes. Close waits for calls in progress (those holding a connection)
// and closes the connections; later calls fail with record.ErrClosed, and
// so does a call that was waiting for a free connection when Close began,
// as soon as one is released. Errors never include the DSN's
// password: a DSN that does not parse is reported without its text.
package pgsink
