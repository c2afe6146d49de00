package demo_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/signal"
	"time"

	"github.com/notionsync/notionsync/internal/demo"
)

// A test or tool drives the processes through a Cluster. (Not run: it needs
// the binaries from make build and redis-server.)
func ExampleCluster() {
	ctx := context.Background()
	c, err := demo.New(demo.Options{
		Dir: "demo-data", BinDir: "bin", Workers: 3, Schedulers: 2,
		AccessTokenLifetime: 20 * time.Second,
		SandboxArgs:         []string{"-pages", "30"},
		Out:                 os.Stdout,
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := c.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer c.Stop()
	connID, err := c.Connect(ctx) // the real OAuth redirect flow
	if err != nil {
		log.Fatal(err)
	}
	p, err := c.Watch(ctx, time.Second, func(p demo.Progress) bool { return p.Complete })
	if err != nil {
		log.Fatal(err)
	}
	leader, _ := c.Leader(ctx)
	_ = c.KillScheduler(leader) // the other replica takes over within the lease
	fmt.Println(connID, p)
}

// The demo command is Run under a signal context.
func ExampleRun() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	err := demo.Run(ctx, demo.Options{Out: os.Stdout}, demo.RunOptions{Duration: time.Minute})
	if err != nil {
		log.Fatal(err)
	}
}
