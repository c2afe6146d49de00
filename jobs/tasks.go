package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
)

// Task types.
const (
	// TypeRefresh refreshes a connection's token ahead of expiry.
	TypeRefresh = "token:refresh"
	// TypeSweep discovers what changed in a connection since its cursor and
	// fans out page and database tasks.
	TypeSweep = "sync:sweep"
	// TypePage syncs one page: properties and its full block tree.
	TypePage = "sync:page"
	// TypeSweeps runs the sweeps of several connections (a scheduler
	// tick's batch) in one task.
	TypeSweeps = "sync:sweeps"
	// TypeDrain syncs a connection's waiting pages, one after the other,
	// for a slice of time (see DrainPayload).
	TypeDrain = "sync:drain"
	// TypeDatabase syncs one database: its schema, and its rows (as page
	// tasks) edited since the database's own cursor.
	TypeDatabase = "sync:database"
	// TypeDataSource syncs one data source of a database (Notion-Version
	// 2025-09-03 and later): its schema, and its rows (as page tasks)
	// edited since the data source's own cursor.
	TypeDataSource = "sync:data_source"
)

// Queues, by priority: token work before sync work before backfill.
const (
	QueueTokens   = "tokens"
	QueueSync     = "sync"
	QueueBackfill = "backfill"
)

// DefaultQueues are the queue weights a worker uses unless configured
// otherwise (asynq serves queues in proportion to their weight).
var DefaultQueues = map[string]int{QueueTokens: 6, QueueSync: 3, QueueBackfill: 1}

// Payloads carry ids, never tokens.

// RefreshPayload is the payload of TypeRefresh.
type RefreshPayload struct {
	ConnID string `json:"conn_id"`
	// Version is the token version the refresh was asked for.
	Version int64 `json:"version"`
	// Force is an operator's refresh (Client.RefreshNow): the token is
	// refreshed even when it is not due, unless its version already moved
	// past Version. Without it, a token that is not due is left alone.
	Force bool `json:"force,omitempty"`
}

// SweepPayload is the payload of TypeSweep.
type SweepPayload struct {
	ConnID string `json:"conn_id"`
}

// PagePayload is the payload of TypePage.
type PagePayload struct {
	ConnID string `json:"conn_id"`
	PageID string `json:"page_id"`
	// LastEdited is the page's last_edited_time when it was discovered
	// (zero: unknown, e.g. a child page found inside another page).
	LastEdited time.Time `json:"last_edited,omitzero"`
	// DiscoveredAt is when a sweep (or database query) saw that version. A
	// stored copy fetched after it already holds the version: the task then
	// ends without any Notion call, so duplicates cost nothing.
	DiscoveredAt time.Time `json:"discovered_at,omitzero"`
}

// DrainPayload is the payload of TypeDrain. The pages themselves wait in
// the connection's to-do list in Redis, not in the payload.
type DrainPayload struct {
	ConnID string `json:"conn_id"`
	// Queue is where the drain's continuations go (default QueueSync).
	Queue string `json:"queue,omitempty"`
}

// DatabasePayload is the payload of TypeDatabase.
type DatabasePayload struct {
	ConnID     string    `json:"conn_id"`
	DatabaseID string    `json:"database_id"`
	LastEdited time.Time `json:"last_edited,omitzero"`
}

// DataSourcePayload is the payload of TypeDataSource.
type DataSourcePayload struct {
	ConnID       string `json:"conn_id"`
	DataSourceID string `json:"data_source_id"`
	// DatabaseID is the data source's database, when known (a webhook
	// names the data source alone; its object names the database).
	DatabaseID string    `json:"database_id,omitempty"`
	LastEdited time.Time `json:"last_edited,omitzero"`
	// SoleSource: the database had no other data source when its task
	// handed this one out (see record.DataSource.SoleSource).
	SoleSource bool `json:"sole_source,omitempty"`
}

// Enqueuer is the part of *asynq.Client that jobs use.
type Enqueuer interface {
	EnqueueContext(ctx context.Context, task *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error)
}

// retention keeps a completed task's id reserved for a while, so that a
// duplicate enqueued by a later sweep is refused instead of run again.
const retention = time.Hour

// enqueue enqueues a task under a deterministic id. A task with that id that
// is already queued, running or recently completed makes this a no-op:
// duplicates are harmless.
func enqueue(ctx context.Context, e Enqueuer, typ string, payload any, id, queue string, extra ...asynq.Option) (bool, error) {
	b, err := json.Marshal(payload)
	if err != nil {
		return false, err
	}
	opts := append([]asynq.Option{asynq.TaskID(id), asynq.Queue(queue), asynq.Retention(retention), asynq.MaxRetry(maxRetry)}, extra...)
	_, err = e.EnqueueContext(ctx, asynq.NewTask(typ, b), opts...)
	if errors.Is(err, asynq.ErrTaskIDConflict) || errors.Is(err, asynq.ErrDuplicateTask) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("enqueue %s %s: %w", typ, id, err)
	}
	return true, nil
}

// maxRetry bounds retries of failures. Rate limiting and transient token
// waits do not count against it (see Handlers.ServerConfig).
const maxRetry = 20

// Scheduler-facing API (package schedule and the control plane).

// Client enqueues the tasks the scheduler and the control plane start.
type Client struct {
	enq Enqueuer
}

// NewClient wraps an Enqueuer (normally *asynq.Client).
func NewClient(e Enqueuer) *Client { return &Client{enq: e} }

// EnqueueRefresh enqueues a proactive refresh, de-duplicated per token
// version: however often the scheduler (or two leaders) ask, one task per
// version.
func (c *Client) EnqueueRefresh(ctx context.Context, connID string, version int64) error {
	_, err := enqueue(ctx, c.enq, TypeRefresh, RefreshPayload{ConnID: connID, Version: version},
		fmt.Sprintf("refresh:%s:v%d", connID, version), QueueTokens, asynq.MaxRetry(3))
	return err
}

// EnqueueRefreshAt enqueues a proactive refresh that runs when the token's
// refresh is due. Its id names the version and the due time: a retry after
// a failed refresh (tokens moves the due time to the end of its backoff)
// gets a new task, while the same (version, due) asked for twice, by one
// scheduler or two, gets one.
func (c *Client) EnqueueRefreshAt(ctx context.Context, connID string, version int64, due time.Time) error {
	_, err := enqueue(ctx, c.enq, TypeRefresh, RefreshPayload{ConnID: connID, Version: version},
		fmt.Sprintf("refresh:%s:v%d:%d", connID, version, due.UnixMilli()), QueueTokens, asynq.MaxRetry(3), asynq.ProcessAt(due))
	return err
}

// EnqueueSweep enqueues a sweep for the scheduler's slot, de-duplicated per
// (connection, slot).
func (c *Client) EnqueueSweep(ctx context.Context, connID string, slot time.Time) error {
	_, err := enqueue(ctx, c.enq, TypeSweep, SweepPayload{ConnID: connID}, sweepTaskID(connID, slot.UnixMilli()), QueueSync)
	return err
}

// SyncNow enqueues a sweep now (de-duplicated per second).
func (c *Client) SyncNow(ctx context.Context, connID string) error {
	return c.EnqueueSweep(ctx, connID, time.Now().Truncate(time.Second))
}

// SyncEntity enqueues a sync of the one page, database or data source a
// Notion webhook event names (de-duplicated per entity and second), so
// edits land in seconds; other entity types get a sweep. The data_source.*
// events (content_updated, schema_updated, created, deleted, moved,
// undeleted) name a data source: its task reads its schema and the rows
// edited since its cursor. Such tasks stand
// outside the cursor discipline: the periodic sweep stays the safety net.
// It makes jobs.Client a control.EntitySyncer.
func (c *Client) SyncEntity(ctx context.Context, connID, entityType, entityID string) error {
	now := time.Now()
	sec := now.Truncate(time.Second).Unix()
	switch entityType {
	case "page":
		_, err := enqueue(ctx, c.enq, TypePage, PagePayload{ConnID: connID, PageID: entityID, DiscoveredAt: now},
			fmt.Sprintf("hook:page:%s:%s:%d", connID, entityID, sec), QueueSync)
		return err
	case "database":
		_, err := enqueue(ctx, c.enq, TypeDatabase, DatabasePayload{ConnID: connID, DatabaseID: entityID},
			fmt.Sprintf("hook:db:%s:%s:%d", connID, entityID, sec), QueueSync)
		return err
	case "data_source":
		_, err := enqueue(ctx, c.enq, TypeDataSource, DataSourcePayload{ConnID: connID, DataSourceID: entityID},
			fmt.Sprintf("hook:ds:%s:%s:%d", connID, entityID, sec), QueueSync)
		return err
	}
	return c.SyncNow(ctx, connID)
}

// RefreshNow enqueues an operator's refresh of the connection: the worker
// refreshes it even if it is not due (a proactive refresh of a token that is
// not due does nothing), unless the token version already moved past
// version, the one the operator saw (read by the caller). The id is
// de-duplicated per version and second: a double click is one task, a later
// request is a new one even if an earlier task of the same version was
// archived.
func (c *Client) RefreshNow(ctx context.Context, connID string, version int64) error {
	_, err := enqueue(ctx, c.enq, TypeRefresh, RefreshPayload{ConnID: connID, Version: version, Force: true},
		fmt.Sprintf("refresh-now:%s:v%d:%d", connID, version, time.Now().Truncate(time.Second).Unix()), QueueTokens, asynq.MaxRetry(3))
	return err
}

// pageTaskID names a page task. Sweeps within the same minute that see the
// same version produce the same id (asynq refuses the duplicate); later ones
// produce a task that finds the stored copy and ends at once.
func pageTaskID(connID, pageID string, lastEdited, discovered time.Time) string {
	return fmt.Sprintf("page:%s:%s:%d:%d", connID, pageID, lastEdited.Unix(), discovered.Truncate(time.Minute).Unix())
}

func databaseTaskID(connID, dbID string, lastEdited time.Time, sweepSlot int64) string {
	return fmt.Sprintf("db:%s:%s:%d:%d", connID, dbID, lastEdited.Unix(), sweepSlot)
}

func dataSourceTaskID(connID, dsID string, lastEdited time.Time, sweepSlot int64) string {
	return fmt.Sprintf("ds:%s:%s:%d:%d", connID, dsID, lastEdited.Unix(), sweepSlot)
}

func decode[T any](t *asynq.Task) (T, error) {
	var p T
	if err := json.Unmarshal(t.Payload(), &p); err != nil {
		return p, fmt.Errorf("%s: malformed payload: %v: %w", t.Type(), err, asynq.SkipRetry)
	}
	return p, nil
}
