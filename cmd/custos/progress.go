package main

import (
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"
)

// progress prints "label: N/total" on w about ten times a second while
// running, and only when w is a terminal: scripts and CI logs stay quiet.
type progress struct {
	done  atomic.Uint64
	stop  chan struct{}
	ended chan struct{}
}

// startProgress starts a progress line for total items (0: unknown).
func startProgress(w io.Writer, label string, total uint64) *progress {
	p := &progress{stop: make(chan struct{}), ended: make(chan struct{})}
	f, ok := w.(*os.File)
	if !ok {
		close(p.ended)
		return p
	}
	if fi, err := f.Stat(); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		close(p.ended)
		return p
	}
	go func() {
		defer close(p.ended)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		print := func() {
			if total > 0 {
				fmt.Fprintf(f, "\r%s: %d/%d (%.0f%%)", label, p.done.Load(), total, 100*float64(p.done.Load())/float64(total))
			} else {
				fmt.Fprintf(f, "\r%s: %d", label, p.done.Load())
			}
		}
		for {
			select {
			case <-tick.C:
				print()
			case <-p.stop:
				print()
				fmt.Fprintln(f)
				return
			}
		}
	}()
	return p
}

// Add counts n more items.
func (p *progress) Add(n uint64) { p.done.Add(n) }

// Stop ends the line. Safe to call once.
func (p *progress) Stop() {
	select {
	case <-p.ended:
	default:
		close(p.stop)
		<-p.ended
	}
}
