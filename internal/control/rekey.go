package control

import (
	"net/http"
	"strconv"

	"go.uber.org/zap"
)

// RekeyResult is the answer of POST /api/v1/rekey.
type RekeyResult struct {
	// Rekeyed counts records re-sealed with the primary key; Unchanged those
	// already sealed with it (or changed concurrently by a writer that used
	// it); Failed those that could not be read (see the log).
	Rekeyed   int `json:"rekeyed"`
	Unchanged int `json:"unchanged"`
	Failed    int `json:"failed"`
	// Next is the cursor for the next page ("" when done).
	Next string `json:"next"`
}

// handleRekey re-seals a page of connections with the primary encryption
// key (after NOTIONSYNC_TOKEN_KEYS gained a new first key), without moving
// any version: safe while refreshes run. Call it with ?after=<next> until
// next is empty; then the old key can be removed.
func (s *Server) handleRekey(w http.ResponseWriter, r *http.Request) {
	limit := 500
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			writeJSONError(w, http.StatusBadRequest, "invalid_limit", "limit must be a whole number from 1 to 1000")
			return
		}
		limit = n
	}
	conns, next, err := s.store.List(r.Context(), r.URL.Query().Get("after"), limit)
	if err != nil {
		s.log.Error("control: rekey: list", zap.Error(err))
		writeJSONError(w, http.StatusServiceUnavailable, "unavailable", "connections could not be listed; try again")
		return
	}
	res := RekeyResult{Next: next}
	for _, c := range conns {
		wrote, err := s.store.Rekey(r.Context(), c.ID)
		switch {
		case err != nil:
			res.Failed++
			s.log.Warn("control: rekey failed", zap.String("conn_id", c.ID), zap.Error(err))
		case wrote:
			res.Rekeyed++
		default:
			res.Unchanged++
		}
	}
	s.log.Info("control: rekey page done", zap.Int("rekeyed", res.Rekeyed), zap.Int("unchanged", res.Unchanged), zap.Int("failed", res.Failed))
	writeJSON(w, http.StatusOK, res)
}
