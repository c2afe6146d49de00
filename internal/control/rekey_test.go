package control

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/notionsync/notionsync/tokens"
)

// After a key rotation (k1 became primary, k0 still configured), the rekey
// endpoint re-seals every record with k1, page by page; afterwards k0 can go.
func TestRekeyEndpoint(t *testing.T) {
	t.Parallel()
	k0 := tokens.Key{ID: "k0", Secret: []byte("fedcba9876543210fedcba9876543210")}
	h := newHarness(t, harnessOptions{keys: []tokens.Key{k0}})
	// Records written before the rotation, sealed with k0.
	oldRing, err := tokens.NewKeyring(k0)
	if err != nil {
		t.Fatal(err)
	}
	old, err := tokens.NewStore(tokens.StoreConfig{Redis: h.rdb, Keyring: oldRing, KeyPrefix: h.prefix})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"r1", "r2", "r3"} {
		if _, err := old.Connect(context.Background(), id, &tokens.Grant{AccessToken: "a-" + id, RefreshToken: "r-" + id}, timing, tokens.ConnectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	total := RekeyResult{}
	after := ""
	for {
		r := h.api(http.MethodPost, "/api/v1/rekey?limit=2&after="+after, nil)
		if r.status != http.StatusOK {
			t.Fatalf("%d %s", r.status, r.body)
		}
		var page RekeyResult
		if err := json.Unmarshal([]byte(r.body), &page); err != nil {
			t.Fatal(err)
		}
		total.Rekeyed += page.Rekeyed
		total.Unchanged += page.Unchanged
		total.Failed += page.Failed
		if page.Next == "" {
			break
		}
		after = page.Next
	}
	if total.Rekeyed != 3 || total.Failed != 0 {
		t.Fatalf("rekey totals %+v, want 3 re-sealed", total)
	}
	for _, id := range []string{"r1", "r2", "r3"} {
		if c := h.conn(id); c.KeyID != "k1" || c.Version != 1 {
			t.Fatalf("%s: key %s version %d, want k1 and an unchanged version", id, c.KeyID, c.Version)
		}
	}
	if r := h.apiAs("wrong-token-wrong-token", http.MethodPost, "/api/v1/rekey", nil); r.status != http.StatusUnauthorized {
		t.Fatalf("rekey without the admin credential: %d", r.status)
	}
}
