package sandbox

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/notionsync/notionsync/internal/notionfake"
)

// Limits of POST /_sandbox/workspaces, so that a typo cannot exhaust memory.
const (
	maxFleetWorkspaces = 20_000
	maxFleetPages      = 100
	maxFleetBlocks     = 100
	maxFleetDatabases  = 10
	maxFleetRows       = 1000
	// maxHugePages bounds huge_pages per workspace, maxHugePageBlocks
	// huge_page_blocks, maxHugeTextBytes huge_text_bytes.
	maxHugePages      = 10
	maxHugePageBlocks = 10_000
	maxHugeTextBytes  = 1 << 20
	// maxHugeBlocksPerRequest bounds the huge pages' blocks of one request
	// (count × huge_pages × huge_page_blocks): about 1 KiB of memory each.
	maxHugeBlocksPerRequest = 1_000_000
)

// WorkspacesRequest is the body of POST /_sandbox/workspaces: seed Count
// workspaces named Prefix + "0", Prefix + "1", ... (each with its own small
// generated content) and issue one authorization code per workspace, bound
// to RedirectURI. Exchanging a code at the token endpoint connects that
// workspace, as an approved authorization would: this is how a load test
// creates many connections without as many browser flows.
type WorkspacesRequest struct {
	// Count is the number of workspaces, 1..20000.
	Count int `json:"count"`
	// Prefix starts every workspace id. Default "fleet-".
	Prefix string `json:"prefix"`
	// Start is the index of the first workspace (default 0), so that a
	// second request can add more workspaces after the first ones.
	Start int `json:"start"`
	// Pages and BlocksPerPage are each workspace's content (0..100 each;
	// defaults 3 and 4), flat blocks, no databases, times in the last hour.
	Pages         *int `json:"pages"`
	BlocksPerPage *int `json:"blocks_per_page"`
	// UnknownBlocks adds a block of a type API clients do not know to each
	// page.
	UnknownBlocks bool `json:"unknown_blocks"`
	// HugePages adds that many huge pages to each workspace (0..10, default
	// 0), on top of Pages: HugePageBlocks top-level blocks each (1..10000,
	// default 2500, i.e. 25 block children requests of 100) with a few
	// nested toggles, the first one a paragraph of HugeTextBytes of text
	// (0..1 MiB, default 100000) in rich text items of at most 2,000
	// characters (notionfake.SeedSpec.HugePages). Count × HugePages ×
	// HugePageBlocks is at most 1,000,000.
	HugePages      int  `json:"huge_pages"`
	HugePageBlocks *int `json:"huge_page_blocks"`
	HugeTextBytes  *int `json:"huge_text_bytes"`
	// Databases, RowsPerDatabase, NestedPages, MultiSourceDatabases and
	// ManyReferenceRows add richer content, as notionfake.SeedSpec's fields
	// of those names (default 0: flat pages only, as before). Bounds:
	// databases 0..10, rows 0..1000, nested pages at most pages,
	// multi-source databases at most databases, many-reference rows at most
	// rows. bench/fleet's fidelity scenario uses them.
	Databases            int `json:"databases"`
	RowsPerDatabase      int `json:"rows_per_database"`
	NestedPages          int `json:"nested_pages"`
	MultiSourceDatabases int `json:"multi_source_databases"`
	ManyReferenceRows    int `json:"many_reference_rows"`
	// RedirectURI is what the codes are bound to; the code exchange must
	// send it byte for byte. Required.
	RedirectURI string `json:"redirect_uri"`
}

// WorkspacesResponse is the answer of POST /_sandbox/workspaces.
type WorkspacesResponse struct {
	Workspaces []FleetWorkspace `json:"workspaces"`
}

// FleetWorkspace is one seeded workspace and its single-use authorization
// code.
type FleetWorkspace struct {
	WorkspaceID string `json:"workspace_id"`
	// Pages is the number of pages a complete sync of it holds.
	Pages  int    `json:"pages"`
	Blocks int    `json:"blocks"`
	Code   string `json:"code"`
	// HugePageIDs are its huge pages (WorkspacesRequest.HugePages).
	HugePageIDs []string `json:"huge_page_ids,omitempty"`
}

// CodeRequest is the body of POST /_sandbox/workspaces/{id}/code.
type CodeRequest struct {
	RedirectURI string `json:"redirect_uri"`
}

// CodeResponse is its answer. Exchanging the code re-authorizes the
// workspace: its previous connection is revoked.
type CodeResponse struct {
	WorkspaceID string `json:"workspace_id"`
	Code        string `json:"code"`
}

func validRedirect(u string) bool {
	p, err := url.Parse(u)
	return u != "" && err == nil && p.IsAbs()
}

func (s *Sandbox) handleWorkspaces(w http.ResponseWriter, r *http.Request) {
	var req WorkspacesRequest
	if err := decodeJSON(w, r, &req); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	pages, blocks := 3, 4
	if req.Pages != nil {
		pages = *req.Pages
	}
	if req.BlocksPerPage != nil {
		blocks = *req.BlocksPerPage
	}
	if req.Prefix == "" {
		req.Prefix = "fleet-"
	}
	hugeBlocks, hugeText := notionfake.DefaultHugePageBlocks, notionfake.DefaultHugeTextBytes
	if req.HugePageBlocks != nil {
		hugeBlocks = *req.HugePageBlocks
	}
	if req.HugeTextBytes != nil {
		hugeText = *req.HugeTextBytes
	}
	switch {
	case req.Count < 1 || req.Count > maxFleetWorkspaces:
		writeError(w, http.StatusBadRequest, "invalid_request", fmt.Sprintf("count %d outside 1..%d", req.Count, maxFleetWorkspaces))
		return
	case req.Start < 0 || req.Start > maxFleetWorkspaces*100:
		writeError(w, http.StatusBadRequest, "invalid_request", fmt.Sprintf("start %d is out of range", req.Start))
		return
	case pages < 0 || pages > maxFleetPages || blocks < 0 || blocks > maxFleetBlocks:
		writeError(w, http.StatusBadRequest, "invalid_request",
			fmt.Sprintf("pages and blocks_per_page must be within 0..%d and 0..%d", maxFleetPages, maxFleetBlocks))
		return
	case req.HugePages < 0 || req.HugePages > maxHugePages:
		writeError(w, http.StatusBadRequest, "invalid_request", fmt.Sprintf("huge_pages %d outside 0..%d", req.HugePages, maxHugePages))
		return
	case hugeBlocks < 1 || hugeBlocks > maxHugePageBlocks || hugeText < 0 || hugeText > maxHugeTextBytes:
		writeError(w, http.StatusBadRequest, "invalid_request",
			fmt.Sprintf("huge_page_blocks and huge_text_bytes must be within 1..%d and 0..%d", maxHugePageBlocks, maxHugeTextBytes))
		return
	case req.Count*req.HugePages*hugeBlocks > maxHugeBlocksPerRequest:
		writeError(w, http.StatusBadRequest, "invalid_request",
			fmt.Sprintf("count × huge_pages × huge_page_blocks is %d, more than %d: seed in smaller requests", req.Count*req.HugePages*hugeBlocks, maxHugeBlocksPerRequest))
		return
	case req.Databases < 0 || req.Databases > maxFleetDatabases || req.RowsPerDatabase < 0 || req.RowsPerDatabase > maxFleetRows ||
		req.NestedPages < 0 || req.NestedPages > pages || req.MultiSourceDatabases < 0 || req.MultiSourceDatabases > req.Databases ||
		req.ManyReferenceRows < 0 || req.ManyReferenceRows > req.RowsPerDatabase:
		writeError(w, http.StatusBadRequest, "invalid_request", fmt.Sprintf(
			"databases 0..%d, rows_per_database 0..%d, nested_pages at most pages, multi_source_databases at most databases, many_reference_rows at most rows_per_database",
			maxFleetDatabases, maxFleetRows))
		return
	case !validRedirect(req.RedirectURI):
		writeError(w, http.StatusBadRequest, "invalid_request", "redirect_uri must be an absolute URI")
		return
	}
	if rest, ok := strings.CutPrefix(s.cfg.WorkspaceID, req.Prefix); ok {
		if n, err := strconv.Atoi(rest); err == nil && n >= req.Start && n < req.Start+req.Count && strconv.Itoa(n) == rest {
			writeError(w, http.StatusBadRequest, "invalid_request", "the workspaces would include the seeded workspace")
			return
		}
	}
	spec := notionfake.SeedSpec{
		Seed: s.cfg.Seed.Seed, Pages: pages, BlocksPerPage: blocks, BlockDepth: 1,
		UnknownBlocks: req.UnknownBlocks, History: time.Hour,
		HugePages: req.HugePages, HugePageBlocks: hugeBlocks, HugeTextBytes: hugeText,
		Databases: req.Databases, RowsPerDatabase: req.RowsPerDatabase, NestedPages: req.NestedPages,
		MultiSourceDatabases: req.MultiSourceDatabases, ManyReferenceRows: req.ManyReferenceRows,
	}
	if hugeText == 0 {
		spec.HugeTextBytes = -1 // notionfake: no long paragraph
	}
	out := WorkspacesResponse{Workspaces: make([]FleetWorkspace, 0, req.Count)}
	for i := range req.Count {
		id := req.Prefix + strconv.Itoa(req.Start+i)
		res := s.fake.SeedWorkspace(id, spec)
		out.Workspaces = append(out.Workspaces, FleetWorkspace{
			WorkspaceID: id,
			Pages:       len(res.PageIDs) + len(res.RowIDs),
			Blocks:      res.BlockCount,
			Code:        s.fake.IssueCodeFor(id, req.RedirectURI),
			HugePageIDs: res.HugePageIDs,
		})
	}
	s.log.Info("admin: workspaces seeded", zap.Int("count", req.Count), zap.String("prefix", req.Prefix),
		zap.Int("start", req.Start), zap.Int("pages", pages), zap.Int("huge_pages", req.HugePages))
	writeJSON(w, http.StatusCreated, out)
}

func (s *Sandbox) handleWorkspaceCode(w http.ResponseWriter, r *http.Request) {
	var req CodeRequest
	if err := decodeJSON(w, r, &req); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	if !validRedirect(req.RedirectURI) {
		writeError(w, http.StatusBadRequest, "invalid_request", "redirect_uri must be an absolute URI")
		return
	}
	id := r.PathValue("id")
	writeJSON(w, http.StatusOK, CodeResponse{WorkspaceID: id, Code: s.fake.IssueCodeFor(id, req.RedirectURI)})
}
