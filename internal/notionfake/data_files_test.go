package notionfake

import (
	"bytes"
	"crypto/sha256"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// get downloads u (a file URL the fake handed out) without a bearer token.
func (h *dataHarness) get(u string) (int, []byte) {
	h.t.Helper()
	resp, err := h.ts.Client().Get(u)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp.StatusCode, b
}

// fileURL digs obj[path...] for a {"url", "expiry_time"} object.
func fileURL(t *testing.T, v any, path ...any) (string, string) {
	t.Helper()
	for _, k := range path {
		switch k := k.(type) {
		case string:
			v = v.(map[string]any)[k]
		case int:
			v = v.([]any)[k]
		}
	}
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("no file object at %v: %v", path, v)
	}
	return m["url"].(string), m["expiry_time"].(string)
}

func TestHostedFilesAreSignedAndExpire(t *testing.T) {
	h := newDataHarness(t, SeedSpec{Seed: 3, Pages: 2, BlocksPerPage: 2, Databases: 1, RowsPerDatabase: 2, Files: true})
	// Distinct files: the logo, a cover for page 1, 5 blocks per page, one
	// attachment per row, the database's cover.
	if got := len(h.seed.Files); got != 1+1+5*2+2+1 {
		t.Fatalf("%d files", got)
	}
	page := h.seed.PageIDs[0]
	obj := h.raw("GET", "/v1/pages/"+page, nil).json(t)
	icon, exp := fileURL(t, obj, "icon", "file")
	if want := t0.Add(time.Hour).Format("2006-01-02T15:04:05.000Z07:00"); exp != want {
		t.Errorf("expiry_time %q, want %q", exp, want)
	}
	if !strings.HasPrefix(icon, h.ts.URL+"/_files/"+testWS+"/") || !strings.Contains(icon, "X-Amz-Signature=") {
		t.Fatalf("icon url %q", icon)
	}
	status, body := h.get(icon)
	if status != 200 || !bytes.HasPrefix(body, []byte("\x89PNG")) {
		t.Fatalf("icon: %d %q", status, body[:min(len(body), 20)])
	}
	cover, _ := fileURL(t, obj, "cover", "file")
	if cover == icon {
		t.Error("cover and icon share a URL")
	}

	// Blocks and files properties carry the same shapes.
	blocks := h.raw("GET", "/v1/blocks/"+page+"/children", nil).json(t)["results"].([]any)
	var kinds []string
	for _, b := range blocks {
		bm := b.(map[string]any)
		typ := bm["type"].(string)
		p := bm[typ].(map[string]any)
		switch p["type"] {
		case "file":
			u, _ := fileURL(t, p, "file")
			if st, _ := h.get(u); st != 200 {
				t.Errorf("%s block: %d", typ, st)
			}
			kinds = append(kinds, typ)
		case "external":
			kinds = append(kinds, "external "+typ)
		}
	}
	if got := strings.Join(kinds, ","); got != "image,pdf,file,video,audio,external image" {
		t.Errorf("file blocks %s", got)
	}
	row := h.raw("GET", "/v1/pages/"+h.seed.RowIDs[0], nil).json(t)
	att, _ := fileURL(t, row, "properties", "Attachments", "files", 0, "file")
	logo, _ := fileURL(t, row, "properties", "Attachments", "files", 1, "file")
	if st, b := h.get(att); st != 200 || !strings.HasPrefix(string(b), "notes\n") {
		t.Errorf("attachment: %d %q", st, b)
	}
	if strings.Split(logo, "?")[0] != strings.Split(icon, "?")[0] {
		t.Errorf("the logo has two stable URLs: %s, %s", logo, icon)
	}

	// A forged signature is refused; an expired URL too, and a fresh GET
	// of the object hands out a fresh URL with the same stable part.
	if st, b := h.get(strings.Replace(icon, "X-Amz-Expires=3600", "X-Amz-Expires=9999", 1)); st != 403 || !strings.Contains(string(b), "SignatureDoesNotMatch") {
		t.Errorf("forged: %d %s", st, b)
	}
	h.clock.Advance(time.Hour + time.Second)
	if st, b := h.get(icon); st != 403 || !strings.Contains(string(b), "Request has expired") {
		t.Errorf("expired: %d %s", st, b)
	}
	fresh, _ := fileURL(t, h.raw("GET", "/v1/pages/"+page, nil).json(t), "icon", "file")
	if fresh == icon || strings.Split(fresh, "?")[0] != strings.Split(icon, "?")[0] {
		t.Errorf("fresh %s, old %s", fresh, icon)
	}
	if st, _ := h.get(fresh); st != 200 {
		t.Errorf("fresh url: %d", st)
	}
	st := h.s.FileStats()
	if st.Expired != 1 || st.Refused != 1 || st.Served < 8 {
		t.Errorf("stats %+v", st)
	}
}

func TestGeneratedFileStreams(t *testing.T) {
	h := newDataHarness(t, SeedSpec{})
	f := h.s.AddGeneratedFile(testWS, "big.bin", "", 3<<20+7, 42)
	p, err := h.s.AddPage(testWS, WorkspaceParent(), "big", FileBlock("file", f))
	if err != nil {
		t.Fatal(err)
	}
	blocks := h.raw("GET", "/v1/blocks/"+p+"/children", nil).json(t)["results"].([]any)
	u, _ := fileURL(t, blocks[0], "file", "file")
	st, b := h.get(u)
	if st != 200 || len(b) != 3<<20+7 {
		t.Fatalf("%d, %d bytes", st, len(b))
	}
	_, again := h.get(u)
	if sha256.Sum256(b) != sha256.Sum256(again) {
		t.Error("generated content is not deterministic")
	}
	if resp, err := http.Get(h.ts.URL + "/_files/" + testWS + "/nope/x"); err != nil || resp.StatusCode != 404 {
		t.Errorf("unknown file: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
}
