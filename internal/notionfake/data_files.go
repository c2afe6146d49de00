package notionfake

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"time"
)

// This file is the fake of Notion-hosted files. Notion answers a file it
// hosts (a file/image/pdf/video/audio block, a page icon or cover, a files
// property value) as
//
//	{"type": "file", "file": {"url": "<signed S3 URL>", "expiry_time": "<url expiry>"}}
//
// where the URL is a presigned S3 GET that dies an hour after the request
// that returned it; every fresh GET of the object returns a fresh URL. The
// fake does the same: the bytes are served by
//
//	GET /_files/{workspace}/{file}/{name}?X-Amz-Date=...&X-Amz-Expires=...&X-Amz-Signature=...
//
// (no bearer token: a presigned URL is its own credential), signed with a
// per-Server key and checked against the fake's clock (Options.Now). An
// expired URL answers 403 with S3's XML AccessDenied "Request has expired",
// a forged one 403 SignatureDoesNotMatch. The stable part of the URL (scheme,
// host, path) names the file; only the query changes between requests, as
// with Notion.
//
// Content refers to a file with a HostedFile value (AddFile,
// AddGeneratedFile) placed where Notion puts the {url, expiry_time} object:
// FileObject, FileBlock and FilesPropertyValue build the shapes. When an
// answer is marshalled the placeholder becomes a URL signed for that request
// (signFileURLs).

// DefaultFileURLLifetime is how long a file URL the fake hands out stays
// valid: Notion's S3 URLs expire after an hour.
const DefaultFileURLLifetime = time.Hour

// HostedFile is a file the fake hosts. Put it where Notion puts a file's
// {"url", "expiry_time"} object; it is rendered as a freshly signed URL.
type HostedFile struct {
	// WorkspaceID and ID locate the file; Name is its file name (the last
	// path segment of its URL).
	WorkspaceID, ID, Name string
}

// fileMarker starts the placeholder URL that signFileURLs replaces.
const fileMarker = "notionfake-file:"

// fileExpiryMarker is the placeholder expiry_time.
const fileExpiryMarker = "notionfake-file-expiry"

// MarshalJSON renders the placeholder {url, expiry_time} object.
func (f HostedFile) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{
		"url":         fileMarker + f.WorkspaceID + "/" + f.ID + "/" + url.PathEscape(f.Name),
		"expiry_time": fileExpiryMarker,
	})
}

// hostedFile is a file's bytes: data, or size bytes generated from seed
// (large files are never held in memory).
type hostedFile struct {
	contentType string
	data        []byte
	size        int64
	seed        uint64
	generated   bool
}

func (f *hostedFile) length() int64 {
	if f.generated {
		return f.size
	}
	return int64(len(f.data))
}

func (f *hostedFile) reader() io.Reader {
	if f.generated {
		var seed [32]byte
		for i := range 8 {
			seed[i] = byte(f.seed >> (8 * i))
		}
		return io.LimitReader(rand.NewChaCha8(seed), f.size)
	}
	return bytes.NewReader(f.data)
}

// FileStats counts file downloads (GET /_files/...). Counters only grow.
type FileStats struct {
	// Served counts downloads answered 200; Bytes their bytes.
	Served int
	Bytes  int64
	// Expired counts URLs refused because they had expired.
	Expired int
	// Refused counts other refusals (bad signature, unknown file).
	Refused int
	// ByFile counts the 200 answers per file id.
	ByFile map[string]int
}

// filesKey is the extLocked key of the files state.
type filesKey struct{}

type filesState struct {
	key      []byte // HMAC key of the URL signatures
	lifetime time.Duration
	files    map[string]*hostedFile // by workspace + "/" + id
	stats    FileStats
}

func (s *Server) filesLocked() *filesState {
	return s.extLocked(filesKey{}, func() any {
		k := make([]byte, 32)
		copy(k, randomHex(16))
		return &filesState{key: k, lifetime: DefaultFileURLLifetime, files: make(map[string]*hostedFile),
			stats: FileStats{ByFile: make(map[string]int)}}
	}).(*filesState)
}

// AddFile hosts data as file name of workspace ws (created if needed).
func (s *Server) AddFile(ws, name, contentType string, data []byte) HostedFile {
	return s.addFile(ws, newUUID(), name, &hostedFile{contentType: contentType, data: bytes.Clone(data)})
}

// AddGeneratedFile hosts size bytes of deterministic pseudo-random content
// (from seed) as file name of workspace ws, generated while served: a 200 MB
// file costs the fake no memory.
func (s *Server) AddGeneratedFile(ws, name, contentType string, size int64, seed uint64) HostedFile {
	return s.addFile(ws, newUUID(), name, &hostedFile{contentType: contentType, size: size, seed: seed, generated: true})
}

func (s *Server) addFile(ws, id, name string, f *hostedFile) HostedFile {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.wsDataLocked(ws)
	s.filesLocked().files[d.id+"/"+id] = f
	return HostedFile{WorkspaceID: d.id, ID: id, Name: name}
}

// SetFileURLLifetime sets how long the file URLs handed out from now on stay
// valid. Default DefaultFileURLLifetime.
func (s *Server) SetFileURLLifetime(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.filesLocked().lifetime = d
}

// FileStats returns a copy of the download counters.
func (s *Server) FileStats() FileStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.filesLocked().stats
	st.ByFile = make(map[string]int, len(st.ByFile))
	for k, v := range s.filesLocked().stats.ByFile {
		st.ByFile[k] = v
	}
	return st
}

// FileObject is Notion's hosted file object (a page icon or cover).
func FileObject(f HostedFile) map[string]any {
	return map[string]any{"type": "file", "file": f}
}

// ExternalFileObject is Notion's external file object.
func ExternalFileObject(u string) map[string]any {
	return map[string]any{"type": "external", "external": map[string]any{"url": u}}
}

// FileBlock returns a block of a file type (image, pdf, file, video,
// audio) showing the hosted file f.
func FileBlock(typ string, f HostedFile) *Block {
	p := map[string]any{"caption": []any{}, "type": "file", "file": f}
	if typ == "file" || typ == "pdf" {
		p["name"] = f.Name
	}
	return NewBlock(typ, p)
}

// ExternalFileBlock returns a block of a file type linking to u.
func ExternalFileBlock(typ, u string) *Block {
	return NewBlock(typ, map[string]any{"caption": []any{}, "type": "external", "external": map[string]any{"url": u}})
}

// FilesPropertyValue is the value of a files property holding fs.
func FilesPropertyValue(fs ...HostedFile) []any {
	out := make([]any, len(fs))
	for i, f := range fs {
		out[i] = map[string]any{"name": f.Name, "type": "file", "file": f}
	}
	return out
}

var fileMarkerRE = regexp.MustCompile(`"` + fileMarker + `([A-Za-z0-9_.-]+)/([0-9a-f-]+)/([^"\\]*)"`)

// signFileURLs replaces the HostedFile placeholders of a marshalled answer
// with URLs signed at now, served from base (scheme://host).
func (s *Server) signFileURLs(body []byte, base string, now time.Time) []byte {
	if !bytes.Contains(body, []byte(fileMarker)) {
		return body
	}
	st := s.filesLocked()
	expires := int64(st.lifetime / time.Second)
	date := now.UTC().Format("20060102T150405Z")
	body = fileMarkerRE.ReplaceAllFunc(body, func(m []byte) []byte {
		sub := fileMarkerRE.FindSubmatch(m)
		ws, id, name := string(sub[1]), string(sub[2]), string(sub[3])
		q := url.Values{}
		q.Set("X-Amz-Algorithm", "AWS4-HMAC-SHA256")
		q.Set("X-Amz-Date", date)
		q.Set("X-Amz-Expires", strconv.FormatInt(expires, 10))
		q.Set("X-Amz-SignedHeaders", "host")
		q.Set("X-Amz-Signature", st.sign(ws, id, date, expires))
		u := base + "/_files/" + ws + "/" + id + "/" + name + "?" + q.Encode()
		b, _ := json.Marshal(u)
		return b
	})
	exp, _ := json.Marshal(now.Add(st.lifetime).UTC().Format("2006-01-02T15:04:05.000Z07:00"))
	return bytes.ReplaceAll(body, []byte(`"`+fileExpiryMarker+`"`), exp)
}

func (st *filesState) sign(ws, id, date string, expires int64) string {
	m := hmac.New(sha256.New, st.key)
	fmt.Fprintf(m, "%s\n%s\n%s\n%d", ws, id, date, expires)
	return hex.EncodeToString(m.Sum(nil))
}

// requestBase is the scheme://host the request came to, which file URLs
// point back at.
func requestBase(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// serveFile serves GET /_files/{ws}/{id}/{name}: the bytes of a hosted file
// behind a valid, unexpired signature, as S3 would.
func (s *Server) serveFile(w http.ResponseWriter, r *http.Request) {
	ws, id := r.PathValue("ws"), r.PathValue("id")
	q := r.URL.Query()
	date, sig := q.Get("X-Amz-Date"), q.Get("X-Amz-Signature")
	expires, expErr := strconv.ParseInt(q.Get("X-Amz-Expires"), 10, 64)
	signed, dateErr := time.Parse("20060102T150405Z", date)

	s.mu.Lock()
	st := s.filesLocked()
	f, ok := st.files[ws+"/"+id]
	now := s.now()
	var code, msg string
	switch {
	case !ok:
		code, msg = "NoSuchKey", "The specified key does not exist."
	case expErr != nil || dateErr != nil || !hmac.Equal([]byte(sig), []byte(st.sign(ws, id, date, expires))):
		code, msg = "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided."
	case now.After(signed.Add(time.Duration(expires) * time.Second)):
		code, msg = "AccessDenied", "Request has expired"
		st.stats.Expired++
	}
	if code != "" {
		if code != "AccessDenied" {
			st.stats.Refused++
		}
		s.mu.Unlock()
		status := http.StatusForbidden
		if code == "NoSuchKey" {
			status = http.StatusNotFound
		}
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(status)
		fmt.Fprintf(w, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s</Code><Message>%s</Message><RequestId>%s</RequestId></Error>", code, msg, randomHex(8))
		return
	}
	st.stats.Served++
	st.stats.Bytes += f.length()
	st.stats.ByFile[id]++
	body, size, ctype := f.reader(), f.length(), f.contentType
	s.mu.Unlock()
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = io.Copy(w, body)
	}
}

// seedFileID is a deterministic file id derived from the seed's ids (it
// draws nothing from the seed's random stream).
func seedFileID(parts ...string) string {
	h := fnv.New128a()
	for _, p := range parts {
		_, _ = io.WriteString(h, p)
		_, _ = h.Write([]byte{0})
	}
	b := h.Sum(nil)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// seedContent is a small deterministic file body.
func seedContent(header string, id string, n int) []byte {
	b := make([]byte, 0, n+len(header))
	b = append(b, header...)
	for len(b) < n {
		b = append(b, id...)
	}
	return b[:max(n, len(header))]
}

// seedFileKinds are the file blocks SeedSpec.Files gives every page: block
// type, file extension, content type.
var seedFileKinds = []struct{ typ, ext, ctype string }{
	{"image", "png", "image/png"},
	{"pdf", "pdf", "application/pdf"},
	{"file", "zip", "application/zip"},
	{"video", "mp4", "video/mp4"},
	{"audio", "mp3", "audio/mpeg"},
}

// seedFiles adds SeedSpec.Files' files (see there). The caller indexes the
// pages afterwards.
func (g *seedGen) seedFiles(dbs []*database) {
	host := func(id, name, ctype string, data []byte) HostedFile {
		g.files.files[g.d.id+"/"+id] = &hostedFile{contentType: ctype, data: data}
		f := HostedFile{WorkspaceID: g.d.id, ID: id, Name: name}
		g.res.Files = append(g.res.Files, f)
		return f
	}
	logoID := seedFileID(g.d.id, "logo")
	logo := host(logoID, "logo.png", "image/png", seedContent("\x89PNG\r\n\x1a\n", logoID, 1500))
	for i, id := range g.res.PageIDs {
		p := g.d.pages[id]
		p.Icon = FileObject(logo)
		if i%2 == 0 {
			cid := seedFileID(id, "cover")
			p.Cover = FileObject(host(cid, "cover.png", "image/png", seedContent("\x89PNG\r\n\x1a\n", cid, 3000+i)))
		}
		for k, kind := range seedFileKinds {
			fid := seedFileID(id, kind.typ)
			f := host(fid, fmt.Sprintf("%s-%d.%s", kind.typ, i+1, kind.ext), kind.ctype, seedContent(kind.typ+"\n", fid, 1000+100*k+i))
			b := FileBlock(kind.typ, f)
			b.ID = seedFileID(id, "block", kind.typ)
			b.CreatedTime, b.LastEditedTime = p.CreatedTime, p.CreatedTime
			p.Blocks = append(p.Blocks, b)
			g.res.FileBlockIDs = append(g.res.FileBlockIDs, b.ID)
		}
		ext := ExternalFileBlock("image", "https://images.example.com/"+id+".jpg")
		ext.ID = seedFileID(id, "block", "external")
		ext.CreatedTime, ext.LastEditedTime = p.CreatedTime, p.CreatedTime
		p.Blocks = append(p.Blocks, ext)
	}
	for _, db := range dbs {
		// A database (and so its data sources) shows the logo as its icon
		// and a cover of its own.
		db.icon = FileObject(logo)
		cid := seedFileID(db.id, "cover")
		db.cover = FileObject(host(cid, "database-cover.png", "image/png", seedContent("\x89PNG\r\n\x1a\n", cid, 2500)))
		db.schema = append(db.schema, propertySchema{id: "att" + db.id[:4], name: "Attachments", typ: "files", config: map[string]any{}})
		for _, id := range g.res.RowsByDatabase[db.id] {
			row := g.d.pages[id]
			row.Icon = FileObject(logo)
			fid := seedFileID(id, "attachment")
			f := host(fid, "notes.txt", "text/plain", seedContent("notes\n", fid, 700))
			row.Properties["Attachments"] = FilesPropertyValue(f, logo)
		}
	}
}
