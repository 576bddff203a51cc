package jetstream

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/custos-dev/custos/eventstore"
)

// followHeartbeat is how often the server confirms an idle follower's
// consumer. Two missed heartbeats make the ordered consumer recreate itself:
// with nats.go's default of 5 s a follower whose consumer lived on a lost
// NATS server stopped applying for 10 s; with this, 2 s.
const followHeartbeat = time.Second

// follow applies the stream to the local store until ctx ends or a
// message cannot be applied (then Failed reports why).
func (l *Log) follow(ctx context.Context, cons jetstream.Consumer) {
	defer close(l.followDone)
	it, err := cons.Messages(jetstream.PullHeartbeat(followHeartbeat))
	if err != nil {
		l.followFailed(fmt.Errorf("jetstream: follow %s: %w", l.opts.Stream, err))
		return
	}
	go func() {
		<-ctx.Done()
		it.Stop()
	}()
	batches := map[string][][]byte{}
	for {
		m, err := it.Next()
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				l.followFailed(fmt.Errorf("jetstream: follow %s: %w", l.opts.Stream, err))
			}
			return
		}
		chain, ok := strings.CutPrefix(m.Subject(), l.opts.Subjects+".")
		seq, perr := strconv.ParseUint(m.Headers().Get(HeaderSeq), 10, 64)
		if !ok || perr != nil {
			l.followFailed(fmt.Errorf("jetstream: follow %s: message on %s has no chain seq", l.opts.Stream, m.Subject()))
			return
		}
		switch m.Headers().Get(HeaderKind) {
		case KindRecord:
			batches[chain] = append(batches[chain], m.Data())
		case KindCommit:
			meta, err := m.Metadata()
			if err != nil {
				l.followFailed(fmt.Errorf("jetstream: follow %s: %w", l.opts.Stream, err))
				return
			}
			l.mu.Lock()
			st := l.state(chain)
			st.tail = max(st.tail, seq)
			l.mu.Unlock()
			err = l.apply(ctx, chain, seq, meta.Sequence.Stream, batches[chain], m.Data(), m.Headers().Get(HeaderWriter) == l.writer)
			delete(batches, chain)
			if err != nil {
				if ctx.Err() == nil && !errors.Is(err, eventstore.ErrClosed) {
					l.followFailed(err)
				}
				return
			}
		default:
			l.followFailed(fmt.Errorf("jetstream: follow %s: message %s of kind %q", l.opts.Stream, m.Subject(), m.Headers().Get(HeaderKind)))
			return
		}
	}
}

// apply ingests one commit of chain ending at seq (stream sequence
// streamSeq) unless the local store has it already (this node published
// it, mine), then records how far the chain is known.
func (l *Log) apply(ctx context.Context, chain string, seq, streamSeq uint64, stored [][]byte, note []byte, mine bool) error {
	if len(note) == 0 {
		note = nil
	}
	if !mine {
		if head, err := l.Store.Head(chain); err == nil && head.Seq < seq {
			l.foreign(chain)
		}
	}
	for {
		head, err := l.Store.Head(chain)
		if err != nil {
			return err
		}
		if head.Seq >= seq {
			break
		}
		if uint64(len(stored)) < seq-head.Seq {
			return fmt.Errorf("jetstream: chain %s commit %d carries %d records, the node has %d", chain, seq, len(stored), head.Seq)
		}
		skip := uint64(len(stored)) - (seq - head.Seq)
		p, err := l.Store.Ingest(ctx, chain, stored[skip:], note)
		if errors.Is(err, eventstore.ErrIngestBusy) || errors.Is(err, eventstore.ErrFenced) {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Millisecond):
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("jetstream: apply chain %s through %d: %w", chain, seq, err)
		}
		if _, err := p.Wait(ctx); err != nil {
			return fmt.Errorf("jetstream: apply chain %s through %d: %w", chain, seq, err)
		}
		break
	}
	l.mu.Lock()
	st := l.state(chain)
	if streamSeq > st.streamSeq {
		st.seq, st.streamSeq = seq, streamSeq
	}
	st.known = true
	close(l.applied)
	l.applied = make(chan struct{})
	l.mu.Unlock()
	return nil
}

func (l *Log) followFailed(err error) {
	l.opts.Logger.Error("jetstream follower stopped", "err", err)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.followErr == nil {
		l.followErr = err
	}
}
