package control

import (
	"bytes"
	"html/template"
	"net/http"

	"go.uber.org/zap"
)

// page is a plain HTML page shown to a person at the end of the OAuth flow.
// Every field is escaped by html/template.
type page struct {
	Status  int
	Outcome OAuthOutcome
	OK      bool
	Title   string
	Message string
	Hint    string
	// Link, when set, is offered as "Start again".
	Link string
}

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{{.Title}} · notionsync</title>
<style>
body{font-family:system-ui,-apple-system,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;line-height:1.5;color:#222}
h1{font-size:1.4rem}.ok{color:#0a6e31}.err{color:#a11}
</style>
</head>
<body>
<h1 class="{{if .OK}}ok{{else}}err{{end}}">{{.Title}}</h1>
<p>{{.Message}}</p>
{{- if .Hint}}
<p>{{.Hint}}</p>
{{- end}}
{{- if .Link}}
<p><a href="{{.Link}}">Start again</a></p>
{{- end}}
</body>
</html>
`))

// pageCSP allows the page's inline style and nothing else.
const pageCSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

func (s *Server) writePage(w http.ResponseWriter, p page) {
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, p); err != nil {
		s.log.Error("control: render page", zap.Error(err))
		writeText(w, http.StatusInternalServerError, "internal error\n")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", pageCSP)
	w.WriteHeader(p.Status)
	_, _ = w.Write(buf.Bytes())
}
