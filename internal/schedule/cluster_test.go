package schedule_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/notionsync/notionsync/internal/keyspace"
	"github.com/notionsync/notionsync/internal/schedule"
	"github.com/notionsync/notionsync/tokens"
)

// tokensOnCluster reports whether tokens.Store can write a connection on a
// cluster: its scripts must name keys of one slot (package tokens moves to
// the keyspace scheme separately). Until it can, the tests that create
// connections through the Store skip on the cluster, saying why; the tests
// that need no Store writes run regardless.
var tokensOnCluster = sync.OnceValue(func() error {
	rdb := clusterSrv.Client() // started by needTokensOnCluster
	defer rdb.Close()
	kr, err := tokens.NewKeyring(tokens.Key{ID: "k1", Secret: []byte("0123456789abcdef0123456789abcdef")})
	if err != nil {
		return err
	}
	st, err := tokens.NewStore(tokens.StoreConfig{Redis: rdb, Keyring: kr, KeyPrefix: "probe:"})
	if err != nil {
		return err
	}
	_, err = st.Connect(context.Background(), "probe", &tokens.Grant{AccessToken: "a", RefreshToken: "r"}, timing, tokens.ConnectOptions{})
	return err
})

// needTokensOnCluster skips t when tokens.Store cannot write on a cluster
// yet (CROSSSLOT), and fails it on any other error.
func needTokensOnCluster(t *testing.T) {
	t.Helper()
	clusterOf(t)
	switch err := tokensOnCluster(); {
	case err == nil:
	case strings.Contains(err.Error(), "CROSSSLOT"):
		t.Skipf("tokens.Store is not on the cluster key scheme yet: %v", err)
	default:
		t.Fatal(err)
	}
}

// The tick's tests that matter for the key scheme run again on a real
// Redis Cluster (3 masters, 3 replicas; one per package run): every script
// and MULTI must name keys of one slot (Redis refuses CROSSSLOT otherwise),
// and the shards of the sweep schedule and the token indexes live on
// different masters.
func TestOnCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 6-node Redis Cluster")
	}
	t.Parallel()
	for name, test := range map[string]func(*testing.T, func(testing.TB) *env){
		"RefreshEnqueuesOnlyWhatIsDue":           testRefreshEnqueuesOnlyWhatIsDue,
		"NewConnectionsAreSpreadOverTheInterval": testNewConnectionsAreSpreadOverTheInterval,
		"SweepsSkipParkAndResume":                testSweepsSkipParkAndResume,
		"SweepsAcrossShards":                     testSweepsAcrossShards,
		"TwoLeadersEnqueueNoDuplicates":          testTwoLeadersEnqueueNoDuplicates,
	} {
		t.Run(name, func(t *testing.T) {
			needTokensOnCluster(t)
			test(t, newClusterEnv)
		})
	}
	t.Run("SweepsOfMissingConnectionsInEveryShard", testMissingInEveryShard)
}

// Entries of connections that have no record, in every shard of the
// schedule (so on every master), are read in one tick and removed, each by
// a script on its own shard: no Store writes needed, so this runs on the
// cluster whatever state package tokens is in.
func testMissingInEveryShard(t *testing.T) {
	t.Parallel()
	e := newClusterEnv(t)
	ctx := t.Context()
	var ids []string
	seen := map[int]int{}
	for i := 0; len(seen) < keyspace.Shards || len(ids) < 2*keyspace.Shards; i++ {
		id := fmt.Sprintf("ghost%04d", i)
		if seen[keyspace.ShardOf(id)] < 3 {
			seen[keyspace.ShardOf(id)]++
			ids = append(ids, id)
		}
	}
	e.setSlots(t0, ids...)
	if got := len(e.sweeps()); got != len(ids) {
		t.Fatalf("%d entries written, want %d", got, len(ids))
	}
	s := e.scheduler(&fakeEnqueuer{name: "s", q: newQueue()}, func(c *schedule.Config) {
		c.RescanPerTick, c.RefreshLookahead = -1, -1
	})
	e.clock.Set(t0.Add(time.Second))
	st, err := s.Tick(ctx)
	if err != nil {
		t.Fatalf("tick on the cluster: %v", err)
	}
	if st.SweepsDue != len(ids) || st.Skipped != len(ids) {
		t.Fatalf("stats %+v, want %d due and skipped", st, len(ids))
	}
	if left := e.sweeps(); len(left) != 0 {
		t.Fatalf("%d entries left, want every missing connection removed", len(left))
	}
	// The keys really are on several masters.
	masters := map[string]bool{}
	for _, i := range []int{0, keyspace.Shards / 2, keyspace.Shards - 1} {
		m, err := e.cluster.MasterOf(ctx, keyspace.Slot(e.sweepKey(i)))
		if err != nil {
			t.Fatal(err)
		}
		masters[m.Addr()] = true
	}
	if len(masters) != 3 {
		t.Fatalf("shards 0, 32 and 63 are on %d masters, want 3", len(masters))
	}
}
