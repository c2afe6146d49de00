package app

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// SetRedisLogger routes go-redis's own log lines (pool dial retries,
// Sentinel switches) into log, named "go-redis", at debug level. By default
// go-redis prints them to stderr with the standard logger, so an
// unreachable Redis showed several raw "pool.go:770: ... failed to dial"
// lines before our own error, which already carries the cause and names the
// variable to fix. At debug level they stay available
// (NOTIONSYNC_LOG_LEVEL=debug) without drowning that error.
//
// go-redis's logger is process-wide, so only a main calls this (Main does),
// never a library.
func SetRedisLogger(log *zap.Logger) {
	redis.SetLogger(redisLogger{log: log.Named("go-redis").WithOptions(zap.AddCallerSkip(1))})
}

type redisLogger struct{ log *zap.Logger }

func (l redisLogger) Printf(_ context.Context, format string, v ...any) {
	if ce := l.log.Check(zap.DebugLevel, ""); ce != nil {
		ce.Message = fmt.Sprintf(format, v...)
		ce.Write()
	}
}
