package app

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"go.uber.org/zap"
)

// SignalContext returns a context cancelled by the first SIGINT or SIGTERM
// (graceful shutdown). A second signal exits the process at once with
// status 130: an operator can always force it.
func SignalContext(parent context.Context, log *zap.Logger) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(parent)
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		select {
		case sig := <-ch:
			log.Info("shutting down; send the signal again to force", zap.String("signal", sig.String()))
			cancel()
		case <-ctx.Done():
			return
		}
		sig := <-ch
		log.Warn("forced exit", zap.String("signal", sig.String()))
		_ = log.Sync()
		os.Exit(130)
	}()
	return ctx, func() { signal.Stop(ch); cancel() }
}
