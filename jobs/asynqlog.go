package jobs

import (
	"fmt"

	"go.uber.org/zap"
)

// AsynqLogger adapts a *zap.Logger to asynq's Logger interface, so asynq's
// own messages land in the same structured log.
type AsynqLogger struct{ L *zap.Logger }

func (a AsynqLogger) Debug(args ...any) { a.L.Debug(fmt.Sprint(args...)) }
func (a AsynqLogger) Info(args ...any)  { a.L.Info(fmt.Sprint(args...)) }
func (a AsynqLogger) Warn(args ...any)  { a.L.Warn(fmt.Sprint(args...)) }
func (a AsynqLogger) Error(args ...any) { a.L.Error(fmt.Sprint(args...)) }

// Fatal logs at error level and does not exit: a library must not end the
// process; asynq calls it only on unrecoverable setup errors, which
// Server.Start also returns.
func (a AsynqLogger) Fatal(args ...any) { a.L.Error(fmt.Sprint(args...)) }
