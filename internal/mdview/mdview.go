// Package mdview serves a folder of Markdown files (a file sink's
// connection folder) as HTML, the way a reader's Markdown viewer shows it:
// each .md file is rendered with goldmark (CommonMark + GitHub tables,
// strikethrough, task lists) on request, every other file is served as
// is, and links stay relative, so following a link in the browser opens
// the linked file. It is a test rig for the browser check of the mirror;
// it trusts the folder (the raw HTML the Markdown renderer writes, such as
// <details>, is passed through).
package mdview

import (
	"bytes"
	"html"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/extension"
	rhtml "github.com/yuin/goldmark/renderer/html"
)

// style is a small GitHub-like stylesheet, so that screenshots read like
// the mirror does in a Markdown viewer.
const style = `body{font:15px/1.5 -apple-system,"Segoe UI",Helvetica,Arial,sans-serif;max-width:860px;margin:24px auto;padding:0 24px;color:#1f2328}
h1{border-bottom:1px solid #d1d9e0;padding-bottom:.3em}a{color:#0969da;text-decoration:none}a:hover{text-decoration:underline}
table{border-collapse:collapse}th,td{border:1px solid #d1d9e0;padding:4px 10px}th{background:#f6f8fa}
code,pre{background:#f6f8fa;border-radius:6px;font:13px ui-monospace,monospace}pre{padding:12px}code{padding:.1em .3em}
blockquote{margin:0;padding:0 1em;color:#59636e;border-left:.25em solid #d1d9e0}ul{padding-left:2em}`

// Handler serves root. "/" redirects to /index.md.
func Handler(root string) http.Handler {
	md := goldmark.New(goldmark.WithExtensions(extension.GFM), goldmark.WithRendererOptions(rhtml.WithUnsafe()))
	files := http.FileServer(http.Dir(root))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/" {
			http.Redirect(w, r, "/index.md", http.StatusFound)
			return
		}
		if !strings.HasSuffix(r.URL.Path, ".md") {
			files.ServeHTTP(w, r)
			return
		}
		// path.Clean of a rooted path cannot climb above "/".
		name := filepath.Join(root, filepath.FromSlash(path.Clean("/"+r.URL.Path)))
		src, err := os.ReadFile(name)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		var body bytes.Buffer
		if err := md.Convert(src, &body); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte("<!doctype html><html><head><meta charset=\"utf-8\"><title>" + html.EscapeString(path.Base(r.URL.Path)) +
			"</title><style>" + style + "</style></head><body>\n"))
		_, _ = w.Write(body.Bytes())
		_, _ = w.Write([]byte("</body></html>\n"))
	})
}
