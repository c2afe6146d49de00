package control

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strings"

	"go.uber.org/zap"
)

// isAdmin reports whether r carries the admin token, as a bearer token or as
// the password of HTTP Basic authentication. The comparison is constant-time
// (both sides are hashed first, so neither length nor content leaks).
func (s *Server) isAdmin(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	if h == "" {
		return false
	}
	var presented string
	scheme, rest, _ := strings.Cut(h, " ")
	switch {
	case strings.EqualFold(scheme, "Bearer"):
		presented = strings.TrimSpace(rest)
	case strings.EqualFold(scheme, "Basic"):
		_, pw, ok := r.BasicAuth()
		if !ok {
			return false
		}
		presented = pw
	}
	if presented == "" {
		return false
	}
	sum := sha256.Sum256([]byte(presented))
	return subtle.ConstantTimeCompare(sum[:], s.adminSum[:]) == 1
}

// requireAdmin serves h only to callers holding the admin token. Browsers
// that cache Basic credentials would attach them to forged cross-site
// requests too, so unsafe cross-origin browser requests are refused as well
// (http.CrossOriginProtection; API clients such as curl send no
// Sec-Fetch-Site or Origin header and are unaffected).
func (s *Server) requireAdmin(h http.Handler) http.Handler {
	protected := s.csrf.Handler(h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		addr := s.clientAddr(r)
		// A client that failed too often is refused before its credential
		// is even compared: guessing stays slow whatever it sends.
		if blocked, wait := s.adminFailures.blocked(addr); blocked {
			w.Header().Set("Retry-After", retryAfter(wait))
			writeJSONError(w, http.StatusTooManyRequests, "too_many_failures",
				"too many failed admin authentications from this address; retry later")
			return
		}
		if !s.isAdmin(r) {
			if r.Header.Get("Authorization") != "" {
				s.adminFailures.take(addr)
				s.log.Info("control: admin request with a wrong credential refused",
					zap.String("path", r.URL.Path), zap.String("client", addr.String()), zap.String("peer", r.RemoteAddr))
			}
			w.Header().Add("WWW-Authenticate", `Bearer realm="notionsync"`)
			w.Header().Add("WWW-Authenticate", `Basic realm="notionsync", charset="UTF-8"`)
			writeJSONError(w, http.StatusUnauthorized, "unauthorized", "the admin token is required (Authorization: Bearer <token>)")
			return
		}
		protected.ServeHTTP(w, r)
	})
}

func newCrossOriginProtection() *http.CrossOriginProtection {
	csrf := http.NewCrossOriginProtection()
	csrf.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSONError(w, http.StatusForbidden, "cross_origin", "cross-origin requests to the admin API are not allowed")
	}))
	return csrf
}

// apiError is the body of every JSON error.
type apiError struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

func writeJSONError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, apiError{Error: code, Message: message})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":"internal","message":"response could not be encoded"}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
