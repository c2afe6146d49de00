package app

import (
	"context"

	"github.com/notionsync/notionsync/internal/control"
	"github.com/notionsync/notionsync/jobs"
)

// consoleSync hands the control plane's console the sync side it reads,
// converted to control's types (control does not import jobs).
func consoleSync(states *jobs.StateReader) control.ConsoleSync {
	return control.ConsoleSync{
		States: func(ctx context.Context, ids []string) ([]control.SyncSummary, error) {
			sts, err := states.States(ctx, ids)
			if err != nil {
				return nil, err
			}
			out := make([]control.SyncSummary, len(sts))
			for i, st := range sts {
				out[i] = syncSummary(st)
			}
			return out, nil
		},
		ErroredPage: states.ErroredPage,
		RunningTasks: func(ctx context.Context, id string) ([]control.TaskRef, error) {
			refs, err := states.RunningTasks(ctx, id)
			if err != nil {
				return nil, err
			}
			out := make([]control.TaskRef, len(refs))
			for i, r := range refs {
				out[i] = control.TaskRef{Kind: r.Kind, Queue: r.Queue, ID: r.ID}
			}
			return out, nil
		},
	}
}

// syncSummary converts a jobs.SyncState for the console.
func syncSummary(st jobs.SyncState) control.SyncSummary {
	s := control.SyncSummary{Cursor: st.Cursor, Target: st.Target, LastSweep: st.LastSweep, LastSync: st.LastSync,
		PagesSynced: st.PagesSynced, Pending: st.Pending}
	for id, msg := range st.Errors {
		d := st.ErrorDetails[id]
		s.Errors = append(s.Errors, control.ObjectErrorInfo{ObjectID: id, Message: msg, Kind: string(d.Kind), Since: d.Since})
	}
	return s
}
