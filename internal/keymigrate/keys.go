package keymigrate

import (
	"slices"
	"strings"

	"github.com/notionsync/notionsync/internal/keyspace"
	"github.com/notionsync/notionsync/tokens"
)

// kind is what an old-layout key is to the migration.
type kind int

const (
	kindUnknown    kind = iota // matches no known pattern: left alone
	kindNew                    // already under a new name ({tag} after the prefix)
	kindKept                   // not tied to a connection: keeps its name
	kindIndex                  // a global index split into shards (its entries move)
	kindFixed                  // a connection's key with a name fixedKeys derives from the id
	kindVariable               // a connection's key naming an object (claims, checkpoints, ...)
	kindLock                   // a connection's old refresh lock: never moved
	kindOAuthState             // an OAuth flow's state: moves under oauthTag
	kindOAuthIndex             // the OAuth states' cap zset: its members move with their states
)

// oauthTag is the hash tag the control plane puts in front of its OAuth
// keys (a state and the cap zset are written by one script).
const oauthTag = "{oauth}:"

// oauthStatesName is the OAuth cap zset; its members are the full names
// of the state keys.
const oauthStatesName = "oauth:states"

// webhookDedup starts a connection's webhook de-duplication marks:
// webhook:notion:dedup:<id>:<entity>.
const webhookDedup = "webhook:notion:dedup:"

// indexNames are the global indexes whose members are connection ids, in
// the order the script takes them.
var indexNames = func() []string {
	n := []string{"due", "connections"}
	for _, st := range tokens.Statuses {
		n = append(n, "status:"+string(st))
	}
	return append(n, "sweeps", "sync:errored")
}()

// leasesName is the lease index: its members name their connection in
// their second "\n"-separated field (jobs/lease.go).
const leasesName = "busy:leases"

// keptNames and keptPrefixes are the keys that are not a connection's:
// they keep their names.
var (
	keptNames    = []string{"status:indexed", "sweeps:cursor", "scheduler:leader", "token-events"}
	keptPrefixes = []string{"webhook:", "workspace:"}
)

// Suffixes of a connection's fixed keys, after "<family>:<id>".
var (
	syncSuffixes  = []string{"", ":pending", ":errors", ":dbcur", ":todo", ":recon", ":users"}
	reconSuffixes = []string{"", ":seen", ":walk", ":check", ":lock"}
	limiterParts  = []string{"gcra", "backoff"}
)

// fixedKeys returns the old names (without the prefix) of every key of
// connection id whose name the id alone determines.
func fixedKeys(id string) []string {
	out := []string{"conn:" + id, "conn:" + id + ":events", "drain:" + id}
	for _, s := range syncSuffixes {
		out = append(out, "sync:"+id+s)
	}
	for _, s := range reconSuffixes {
		out = append(out, "recon:"+id+s)
	}
	for _, p := range limiterParts {
		out = append(out, "notion:{"+id+"}:"+p)
	}
	return out
}

// classify tells what rest (an old key without the prefix) is, and whose
// it is when it belongs to a connection.
func classify(rest string) (id string, k kind) {
	if strings.HasPrefix(rest, "{") {
		return "", kindNew
	}
	if rest == leasesName {
		return "", kindIndex
	}
	if slices.Contains(indexNames, rest) {
		return "", kindIndex
	}
	if slices.Contains(keptNames, rest) {
		return "", kindKept
	}
	if rest == oauthStatesName {
		return "", kindOAuthIndex
	}
	if strings.HasPrefix(rest, "oauth:state:") {
		return "", kindOAuthState
	}
	if d, ok := strings.CutPrefix(rest, webhookDedup); ok {
		if id, _, ok := strings.Cut(d, ":"); ok && tokens.ValidateID(id) == nil {
			return id, kindVariable
		}
		return "", kindUnknown
	}
	for _, p := range keptPrefixes {
		if strings.HasPrefix(rest, p) {
			return "", kindKept
		}
	}
	seg := strings.Split(rest, ":")
	if len(seg) < 2 {
		return "", kindUnknown
	}
	id = seg[1]
	switch seg[0] {
	case "conn":
		if len(seg) == 2 || len(seg) == 3 && seg[2] == "events" {
			k = kindFixed
		}
	case "lock":
		if len(seg) == 2 {
			k = kindLock
		}
	case "drain":
		if len(seg) == 2 {
			k = kindFixed
		}
	case "sync":
		if len(seg) == 2 || len(seg) == 3 && slices.Contains(syncSuffixes, ":"+seg[2]) {
			k = kindFixed
		}
	case "recon":
		if len(seg) == 2 || len(seg) == 3 && slices.Contains(reconSuffixes, ":"+seg[2]) {
			k = kindFixed
		}
	case "notion":
		// notion:{<id>}:gcra; the braces were the old hash tag.
		if len(seg) == 3 && len(id) > 2 && id[0] == '{' && id[len(id)-1] == '}' && slices.Contains(limiterParts, seg[2]) {
			id, k = id[1:len(id)-1], kindFixed
		}
	case "busy", "ckpt":
		// busy:<id>:<kind>:<object>, ckpt:<id>:<kind>:<object...>
		if len(seg) >= 4 {
			k = kindVariable
		}
	case "capped", "reauth-notified":
		// capped:<id>:<page>, reauth-notified:<id>:<version>
		if len(seg) >= 3 {
			k = kindVariable
		}
	}
	if k == kindUnknown || tokens.ValidateID(id) != nil {
		return "", kindUnknown
	}
	return id, k
}

// newName returns the new name of rest, an old key (without the prefix) of
// connection id: the connection's shard tag in front of the old name; the
// limiter's keys also lose their old {id} tag.
func newName(prefix, id, rest string) string {
	if p, ok := strings.CutPrefix(rest, "notion:{"+id+"}:"); ok {
		rest = "notion:" + id + ":" + p
	}
	return keyspace.Conn(prefix, id) + rest
}

// leaseConn returns the connection a lease index member names ("" when it
// names none).
func leaseConn(member string) string {
	f := strings.SplitN(member, "\n", 3)
	if len(f) < 3 || tokens.ValidateID(f[1]) != nil {
		return ""
	}
	return f[1]
}
