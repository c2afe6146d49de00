package schedule_test

import (
	"context"
	"log"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/notionsync/notionsync/internal/schedule"
	"github.com/notionsync/notionsync/tokens"
)

// How cmd/scheduler wires the loop: one Redis client shared with the token
// store and the task queue, and Run until the process is told to stop.
func Example() {
	var (
		ctx    context.Context    // from signal.NotifyContext in main
		secret []byte             // 32-byte key from configuration
		enq    schedule.Enqueuer  // jobs.NewClient(asynqClient)
		logger = zap.NewExample() // the process logger
	)
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{"localhost:6379"}})
	defer rdb.Close()
	keys, err := tokens.NewKeyring(tokens.Key{ID: "k1", Secret: secret})
	if err != nil {
		log.Fatal(err)
	}
	store, err := tokens.NewStore(tokens.StoreConfig{Redis: rdb, Keyring: keys})
	if err != nil {
		log.Fatal(err)
	}
	s, err := schedule.New(schedule.Config{
		Redis: rdb, Store: store, Enqueuer: enq, Logger: logger,
		Hooks: schedule.Hooks{
			OnLeaderChange: func(leader bool) { /* set a gauge */ },
			OnTick:         func(st schedule.TickStats) { /* observe st.Took, count st.RefreshEnqueued */ },
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	// Blocks until ctx is done, then releases the lease for a standby.
	if err := s.Run(ctx); err != nil {
		log.Fatal(err)
	}
}
