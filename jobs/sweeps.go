package jobs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"go.uber.org/zap"
)

// A sweep of an unchanged workspace is one Notion request, and its own
// asynq task costs about four Redis round trips (enqueue, dequeue tries,
// completion) besides: most of the Redis traffic of a fleet with little to
// sync. The scheduler therefore hands out the sweeps that fall due in one
// tick as batches (TypeSweeps): one task, one dequeue, the connections'
// tokens read in one pipeline, the sweeps run side by side. A sweep of a
// batch that finds changes hands the pages to a drain task; one that fails
// is released and retried as a sweep task of its own.

// sweepsInFlight bounds the sweeps of one batch that run at once.
const sweepsInFlight = 16

// SweepRef names one connection's scheduled sweep in a batch.
type SweepRef struct {
	ConnID string `json:"conn_id"`
	// Slot is the scheduler's slot (unix ms); a sweep retried on its own
	// keeps the task id it would have had without the batch.
	Slot int64 `json:"slot"`
}

// SweepsPayload is the payload of TypeSweeps.
type SweepsPayload struct {
	Sweeps []SweepRef `json:"sweeps"`
}

func (h *Handlers) handleSweeps(ctx context.Context, t *asynq.Task) error {
	p, err := decode[SweepsPayload](t)
	if err != nil {
		return err
	}
	taskID, _ := asynq.GetTaskID(ctx)
	log := h.log.With(zap.String("task_type", t.Type()), zap.String("task_id", taskID))
	ids := make([]string, len(p.Sweeps))
	for i, s := range p.Sweeps {
		ids[i] = s.ConnID
	}
	if err := h.cfg.Tokens.Warm(ctx, ids); err != nil {
		// Each sweep reads its own token then.
		log.Debug("could not warm the batch's tokens", zap.Error(err))
	}
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		bad error
	)
	sem := make(chan struct{}, sweepsInFlight)
	for _, s := range p.Sweeps {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := h.batchSweep(ctx, log, taskID, s); err != nil {
				mu.Lock()
				bad = errors.Join(bad, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if bad != nil {
		// Only Redis failures get here (a sweep that could neither finish
		// nor be handed on): asynq runs the batch again; sweeps that did
		// finish cost one unchanged search each.
		return bad
	}
	return ctx.Err()
}

// batchSweep runs one sweep of a batch; a sweep that fails is released and
// handed to a sweep task of its own. It returns an error only when it can
// do neither.
func (h *Handlers) batchSweep(ctx context.Context, log *zap.Logger, taskID string, s SweepRef) error {
	log = log.With(zap.String("conn_id", s.ConnID))
	self := "sweep:" + taskID + ":" + s.ConnID
	err := h.sweep(ctx, log, s.ConnID, self, false)
	if err == nil {
		return nil
	}
	// The failed sweep has released its pending entry with its lease (or,
	// without Redis, left both for the reaper: see release.go); its
	// checkpoint is the connection's, so the retry resumes where it stopped.
	bg := context.WithoutCancel(ctx)
	if stopped(err) {
		// The batch's other sweeps go on; this one ends quietly, as a
		// sweep task of its own would (finish): new task-id generation.
		// The batch task's result is not this connection's to write.
		if gerr := h.state.bumpGen(bg, s.ConnID); gerr != nil {
			log.Warn("could not bump task generation", zap.Error(gerr))
		}
		return nil
	}
	at := time.Now().Add(RetryDelay(0, err, nil))
	if _, eerr := enqueue(bg, h.cfg.Enqueuer, TypeSweep, SweepPayload{ConnID: s.ConnID},
		sweepTaskID(s.ConnID, s.Slot)+":retry", QueueSync, asynq.ProcessAt(at)); eerr != nil {
		return fmt.Errorf("hand the sweep of %s to its own task: %w", s.ConnID, eerr)
	}
	lvl := log.Warn
	if !IsFailure(err) {
		lvl = log.Debug
	}
	lvl("sweep of a batch failed; retried on its own", zap.Time("at", at), zap.Error(err))
	return nil
}

func sweepTaskID(conn string, slotMs int64) string {
	return "sweep:" + conn + ":" + strconv.FormatInt(slotMs, 10)
}

// EnqueueSweeps enqueues the sweeps of one scheduler tick as one batch
// task. The task id names the batch's contents, so the same batch asked
// for twice (by two leaders for a moment) is one task.
func (c *Client) EnqueueSweeps(ctx context.Context, connIDs []string, slots []time.Time) error {
	if len(connIDs) != len(slots) {
		return fmt.Errorf("jobs: EnqueueSweeps: %d connections for %d slots", len(connIDs), len(slots))
	}
	if len(connIDs) == 0 {
		return nil
	}
	p := SweepsPayload{Sweeps: make([]SweepRef, len(connIDs))}
	sum := sha256.New()
	for i, id := range connIDs {
		p.Sweeps[i] = SweepRef{ConnID: id, Slot: slots[i].UnixMilli()}
		fmt.Fprintf(sum, "%s\x00%d\x00", id, p.Sweeps[i].Slot)
	}
	id := fmt.Sprintf("sweeps:%d:%s", len(connIDs), hex.EncodeToString(sum.Sum(nil)[:12]))
	_, err := enqueue(ctx, c.enq, TypeSweeps, p, id, QueueSync)
	return err
}
