package notionclient

import (
	"net/http"
	"testing"

	"github.com/notionsync/notionsync/internal/keyspace"
)

// The limiter's keys sit under the connection's shard (internal/keyspace),
// in the slot of the connection's other keys, so a script may name them
// together with the connection's record on Redis Cluster.
func TestLimiterKeysUnderConnectionShard(t *testing.T) {
	t.Parallel()
	fake := newFakeNotion(t, func(w http.ResponseWriter, r *http.Request, n int) { reply(w, 200, pageJSON) })
	c := testClient(t, newFakeTokens("tok-1"), Config{BaseURL: fake.URL})
	if _, err := c.For(conn).Page.Get(t.Context(), "abc"); err != nil {
		t.Fatal(err)
	}
	base := keyspace.Conn(c.keyPrefix, conn)
	gcra := base + "notion:" + conn + ":gcra"
	if n, err := c.rdb.Exists(t.Context(), gcra).Result(); err != nil || n != 1 {
		t.Fatalf("after a request, %s exists = %d, %v; want 1", gcra, n, err)
	}
	want := keyspace.Slot(base + "conn:" + conn)
	for _, k := range c.keys(conn) {
		if s := keyspace.Slot(k); s != want {
			t.Errorf("limiter key %s is in slot %d, the connection's record in %d", k, s, want)
		}
	}
}
