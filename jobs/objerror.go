package jobs

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/notionsync/notionsync/sync/notionclient"
)

// A per-object error is one of two kinds, and the kind decides what it
// does to the connection:
//
//   - transient (429 and 5xx answers, timeouts, malformed or truncated
//     JSON, a sink that refuses a write): the same request may succeed
//     soon. The object stays pending and is retried with backoff, and the
//     connection's cursor waits for it, so nothing is skipped.
//   - permanent (403, a 404 on its children, a 400 other than a refused
//     cursor, a walk cap, a database the API version cannot query): the
//     same request gets the same answer until the object changes. The
//     object is done with its error: it no longer holds the cursor, and a
//     page's failing version (last_edited_time) is remembered under the
//     capped mark (state.cappedKey), so that version is not asked again;
//     an edit makes a new version, which is tried again. The
//     reconciliation pass (reconcile.go) retries permanent errors too,
//     whatever their version, once per pass: not every sweep.
//
// Both show in the connection's status: SyncState.Errors (id -> message,
// as before) and SyncState.ErrorDetails (id -> kind and since).

// ErrorKind says whether a per-object error holds the connection's cursor.
type ErrorKind string

// Error kinds.
const (
	// ErrorTransient: retried with backoff; the object holds the cursor.
	ErrorTransient ErrorKind = "transient"
	// ErrorPermanent: not retried until the object is edited; the cursor
	// moves on.
	ErrorPermanent ErrorKind = "permanent"
)

// ObjectError describes one per-object error of SyncState.Errors.
type ObjectError struct {
	Kind ErrorKind `json:"kind"`
	// Since is when an error of this kind was first recorded for the
	// object (a retry that fails the same way keeps it).
	Since time.Time `json:"since"`
}

// storedError is a per-object error as the errors hash holds it. Since
// comes first: the Lua that records an error keeps the stored since of an
// error of the same kind by matching this prefix (see setErrorLua). Values
// written before kinds existed are plain messages, read as errors without
// details.
type storedError struct {
	Since int64     `json:"since"`
	Kind  ErrorKind `json:"kind"`
	Msg   string    `json:"msg"`
}

// encodeError is the errors hash value of msg.
func encodeError(kind ErrorKind, msg string, now time.Time) string {
	b, _ := json.Marshal(storedError{Since: now.UnixMilli(), Kind: kind, Msg: msg})
	return string(b)
}

// decodeError reads an errors hash value; ok is false for a plain message
// (written before kinds existed).
func decodeError(v string) (msg string, d ObjectError, ok bool) {
	var se storedError
	if !strings.HasPrefix(v, `{"since":`) || json.Unmarshal([]byte(v), &se) != nil || se.Kind == "" {
		return v, ObjectError{}, false
	}
	return se.Msg, ObjectError{Kind: se.Kind, Since: time.UnixMilli(se.Since)}, true
}

// setErrorLua defines set_err(key, field, value): HSET, except that when
// the stored value is an error of the same kind, its since is kept.
var setErrorLua = `
local function set_err(key, field, val)
  local old = redis.call('HGET', key, field)
  if old then
    local since, kind = string.match(old, '^{"since":(%d+),"kind":"(%a+)"')
    if since and kind == string.match(val, '^{"since":%d+,"kind":"(%a+)"') then
      val = '{"since":' .. since .. string.sub(val, string.find(val, ',', 1, true), -1)
    end
  end
  redis.call('HSET', key, field, val)
end
`

// PermanentError is a Notion answer that will not change for this object
// until the object does (see permanentAnswer). It ends the object's sync
// as a permanent per-object error.
type PermanentError struct {
	// Object names what failed ("page <id>", "database <id>").
	Object string
	Err    error
}

func (e *PermanentError) Error() string {
	return fmt.Sprintf("%s: %v (permanent: not retried until the object is edited)", e.Object, e.Err)
}

func (e *PermanentError) Unwrap() error { return e.Err }

// permanentAnswer reports whether err is a Notion answer that the same
// request would get again: 403 (restricted_resource and the like), 404 and
// 400, except a 400 validation_error for a request that carried a cursor
// (Notion refuses an expired cursor that way; the caller starts over).
// Non-JSON answers (a proxy's 403 page, say) and everything retryable are
// transient.
func permanentAnswer(err error, withCursor bool) bool {
	var ae *notionclient.APIError
	if !errors.As(err, &ae) || ae.Code == notionclient.CodeNonJSON || ae.Code == notionclient.CodeUnexpectedBody || ae.Retryable() {
		return false
	}
	switch ae.Status {
	case http.StatusBadRequest:
		// A refused cursor is how Notion expires one: the listing
		// restarts instead (cursorRefused).
		return !(withCursor && cursorRefused(err))
	case http.StatusForbidden, http.StatusNotFound:
		return true
	}
	return false
}

// errorKind is the kind of a page's or a database's own error.
func errorKind(err error) ErrorKind {
	var pe *PermanentError
	var ce *CapError
	if errors.As(err, &pe) || errors.As(err, &ce) {
		return ErrorPermanent
	}
	return ErrorTransient
}
