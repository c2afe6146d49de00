package jobs

// Key names of a connection's sync state (see state.go), for tools and
// tests of other packages that read or seed it directly (bench/fleet, the
// control plane's tests), so they follow the key scheme instead of
// repeating its format. prefix is Config.KeyPrefix ("" means
// "notionsync:").

// SyncKey returns the name of conn's sync hash (cursor, target, last_sync,
// pages_synced, ...). Its pending set, to-do hash and errors hash are
// SyncKey + ":pending", ":todo" and ":errors".
func SyncKey(prefix, conn string) string { return keyState(prefix).key(conn) }

// DrainKey returns the name of conn's drain flag.
func DrainKey(prefix, conn string) string { return keyState(prefix).drainKey(conn) }

// PageClaimKey returns the name of the claim a task holds on a page of
// conn while it syncs it.
func PageClaimKey(prefix, conn, pageID string) string {
	return keyState(prefix).claimKey(conn, "page", pageID)
}

// ErroredKey returns the name of the errored index shard that holds conn
// (errindex.go).
func ErroredKey(prefix, conn string) string { return keyState(prefix).erroredKey(conn) }

func keyState(prefix string) *state {
	if prefix == "" {
		prefix = "notionsync:"
	}
	return &state{prefix: prefix}
}
