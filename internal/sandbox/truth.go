package sandbox

import (
	"errors"
	"net/http"

	"github.com/notionsync/notionsync/internal/notionfake"
)

// GroundTruth returns GET /_sandbox/ground-truth?workspace=ws: every page,
// row, database and data source of workspace ws ("" is the seeded one),
// with last_edited_time, trash and sharing state and full property values,
// read from the fake's state instead of its imperfect API
// (notionfake.Server.GroundTruth). internal/fidelity compares a sink with
// it.
func (s *Sandbox) GroundTruth(ws string) (notionfake.GroundTruth, error) {
	if ws == "" {
		ws = s.cfg.WorkspaceID
	}
	return s.fake.GroundTruth(ws)
}

func (s *Sandbox) handleGroundTruth(w http.ResponseWriter, r *http.Request) {
	out, err := s.GroundTruth(r.URL.Query().Get("workspace"))
	if errors.Is(err, notionfake.ErrObjectNotFound) {
		writeError(w, http.StatusNotFound, "not_found", err.Error())
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, out)
}
