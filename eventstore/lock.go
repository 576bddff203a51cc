package eventstore

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
)

// ErrLocked means another process (or another Store in this process)
// holds the data folder: Pebble keeps an exclusive lock on it while it is
// open, so a second `custos serve` on the same folder cannot start.
var ErrLocked = errors.New("eventstore: data folder is locked by another process")

// lockedError wraps a pebble.Open error that reports the folder's lock is
// taken, so that callers can match ErrLocked and users read what to do; any
// other error is returned as it is.
func lockedError(dir string, err error) error {
	// Another process: fcntl(F_SETLK) fails with EAGAIN (Linux, macOS).
	// This process: Pebble's own registry of locked files answers with a
	// plain message, matched by text as it carries no sentinel.
	if !errors.Is(err, syscall.EAGAIN) && !strings.Contains(err.Error(), "lock held by current process") {
		return err
	}
	return fmt.Errorf("another custos process holds %s (stop it first, or use its HTTP API): %w: %w", dir, ErrLocked, err)
}
