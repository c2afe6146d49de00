package sandbox

import (
	"net/http"
	"testing"

	"github.com/notionsync/notionsync/internal/notionfake"
)

func TestGroundTruthRoute(t *testing.T) {
	sb, ts := startSandbox(t, smallConfig())
	ws := sb.WorkspaceID()
	ids := sb.Fake().AllPageIDs(ws)
	trashed, unshared := ids[len(ids)-1], ids[len(ids)-2]
	if err := sb.Fake().ArchivePage(ws, trashed); err != nil {
		t.Fatal(err)
	}
	if err := sb.Fake().UnsharePage(ws, unshared); err != nil {
		t.Fatal(err)
	}
	var got notionfake.GroundTruth
	if st, body := call(t, ts, http.MethodGet, "/_sandbox/ground-truth", "", &got); st != http.StatusOK {
		t.Fatalf("ground truth: %d %s", st, body)
	}
	want, err := sb.Fake().GroundTruth(ws)
	if err != nil {
		t.Fatal(err)
	}
	if got.WorkspaceID != ws || len(got.Objects) != len(want.Objects) || len(got.Objects) == 0 {
		t.Fatalf("ground truth of %s: %d objects, want %d", got.WorkspaceID, len(got.Objects), len(want.Objects))
	}
	pages, live := 0, 0
	for _, o := range got.Objects {
		switch {
		case o.ID == trashed && (!o.InTrash || o.Unshared):
			t.Errorf("trashed page: %+v", o)
		case o.ID == unshared && (o.InTrash || !o.Unshared):
			t.Errorf("unshared page: %+v", o)
		}
		if o.Kind == notionfake.TruthPage {
			pages++
			if o.Live() {
				live++
				if o.Properties == nil {
					t.Errorf("live page %s without properties", o.ID)
				}
			}
		}
	}
	// AllPageIDs lists the live pages; an unshared page hides nothing else here.
	if live != len(sb.Fake().AllPageIDs(ws)) || pages < live+2 {
		t.Errorf("%d pages, %d live; AllPageIDs %d", pages, live, len(sb.Fake().AllPageIDs(ws)))
	}
	if st, _ := call(t, ts, http.MethodGet, "/_sandbox/ground-truth?workspace=00000000-0000-4000-8000-000000000000", "", nil); st != http.StatusNotFound {
		t.Errorf("unknown workspace: %d, want 404", st)
	}
}
