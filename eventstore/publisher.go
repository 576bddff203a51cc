package eventstore

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"strconv"

	"github.com/ThreeDotsLabs/watermill/message"
)

// publisher tells the watermill Publisher of durable progress (see
// Options.Publisher). It follows the store, not the commits: after each
// wake-up it publishes, for every chain whose durable head moved, the records
// from the last published seq to the head (when records are published) and
// then the head, so nothing is dropped when it falls behind, and order is
// seq order.
type publisher struct {
	store   *Store
	wake    chan struct{}
	quit    chan struct{}
	stopped chan struct{}
	next    map[string]uint64 // chain → next seq to publish
}

func newPublisher(s *Store) *publisher {
	p := &publisher{
		store:   s,
		wake:    make(chan struct{}, 1),
		quit:    make(chan struct{}),
		stopped: make(chan struct{}),
		next:    map[string]uint64{},
	}
	go p.run()
	return p
}

func (p *publisher) notify() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// stop publishes what is durable and returns. Called by Store.Close after
// every writer stopped.
func (p *publisher) stop() {
	close(p.quit)
	<-p.stopped
}

func (p *publisher) run() {
	defer close(p.stopped)
	for {
		select {
		case <-p.wake:
			p.publishAll()
		case <-p.quit:
			p.publishAll()
			return
		}
	}
}

func (p *publisher) publishAll() {
	p.store.mu.Lock()
	writers := make([]*chainWriter, 0, len(p.store.writers))
	for _, w := range p.store.writers {
		writers = append(writers, w)
	}
	p.store.mu.Unlock()
	for _, w := range writers {
		head := w.durableHead()
		from, seen := p.next[w.chain]
		if !seen {
			// Records durable before this process started writing are not
			// published again; subscribers read history from the store.
			from = w.startSeq + 1
		}
		if from > head.Seq {
			continue
		}
		err := p.publishRecords(w.chain, from, head.Seq)
		if err == nil {
			err = p.store.opts.Publisher.Publish(p.store.opts.HeadTopic, newHeadMessage(w.chain, head))
		}
		if err != nil {
			// Subscribers catch up from the store; log and retry on the next wake.
			p.store.opts.Logger.Warn("publish", "chain", w.chain, "from_seq", from, "err", err)
			continue
		}
		p.next[w.chain] = head.Seq + 1
	}
}

// publishRecords publishes the records with seqs from..to on RecordTopic, if
// set.
func (p *publisher) publishRecords(chain string, from, to uint64) error {
	topic := p.store.opts.RecordTopic
	if topic == "" {
		return nil
	}
	var msgs []*message.Message
	err := p.store.Scan(context.Background(), chain, from, to, func(seq uint64, stored []byte) error {
		v, err := ParseStored(stored)
		if err != nil {
			return err
		}
		m := message.NewMessage(string(v.ID), append([]byte(nil), stored...))
		m.Metadata.Set("chain", chain)
		m.Metadata.Set("seq", strconv.FormatUint(seq, 10))
		m.Metadata.Set("type", string(v.Type))
		msgs = append(msgs, m)
		if len(msgs) == 1024 {
			if err := p.store.opts.Publisher.Publish(topic, msgs...); err != nil {
				return err
			}
			msgs = msgs[:0]
		}
		return nil
	})
	if err == nil && len(msgs) > 0 {
		err = p.store.opts.Publisher.Publish(topic, msgs...)
	}
	return err
}

// HeadMessage is the payload of a message on the head topic: a chain's
// durable head, with seq as a decimal string like the export format.
type HeadMessage struct {
	Chain string `json:"chain"`
	Seq   uint64 `json:"seq,string"`
	Hash  string `json:"hash"` // lowercase hex
}

// newHeadMessage is the message announcing head on chain. Its UUID is
// "chain:seq", unique per head.
func newHeadMessage(chain string, head Head) *message.Message {
	seq := strconv.FormatUint(head.Seq, 10)
	payload, _ := json.Marshal(HeadMessage{Chain: chain, Seq: head.Seq, Hash: hex.EncodeToString(head.Hash[:])}) // cannot fail
	m := message.NewMessage(chain+":"+seq, payload)
	m.Metadata.Set("chain", chain)
	m.Metadata.Set("seq", seq)
	return m
}
