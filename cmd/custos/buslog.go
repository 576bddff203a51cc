package main

import (
	"context"
	"log/slog"

	"github.com/ThreeDotsLabs/watermill"
)

// busLogger is watermill's slog adapter that checks the level first:
// watermill builds the attributes of a Trace line (one for every message
// the bus delivers) before slog looks at the level, which costs more than
// delivering the message.
type busLogger struct {
	watermill.LoggerAdapter
	handler slog.Handler
}

func newBusLogger(logger *slog.Logger) watermill.LoggerAdapter {
	return busLogger{LoggerAdapter: watermill.NewSlogLogger(logger), handler: logger.Handler()}
}

func (l busLogger) Debug(msg string, fields watermill.LogFields) {
	if l.handler.Enabled(context.Background(), slog.LevelDebug) {
		l.LoggerAdapter.Debug(msg, fields)
	}
}

func (l busLogger) Trace(msg string, fields watermill.LogFields) {
	if l.handler.Enabled(context.Background(), watermill.LevelTrace) {
		l.LoggerAdapter.Trace(msg, fields)
	}
}

func (l busLogger) With(fields watermill.LogFields) watermill.LoggerAdapter {
	return busLogger{LoggerAdapter: l.LoggerAdapter.With(fields), handler: l.handler}
}
