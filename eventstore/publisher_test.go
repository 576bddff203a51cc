package eventstore_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/eventstore"
)

// TestPublishesDurableRecordsInOrder subscribes through watermill's
// GoChannel (with BlockPublishUntilSubscriberAck, which keeps order) and
// checks that every record arrives once, in seq order, with its stored bytes.
func TestPublishesDurableRecordsInOrder(t *testing.T) {
	t.Parallel()
	bus := gochannel.NewGoChannel(gochannel.Config{BlockPublishUntilSubscriberAck: true}, watermill.NopLogger{})
	defer bus.Close()
	msgs, err := bus.Subscribe(context.Background(), eventstore.DefaultRecordTopic)
	require.NoError(t, err)
	heads, err := bus.Subscribe(context.Background(), eventstore.DefaultHeadTopic)
	require.NoError(t, err)
	go func() {
		for m := range heads {
			m.Ack()
		}
	}()
	fs := vfs.NewMem()
	s := open(t, fs, "/d", func(o *eventstore.Options) {
		o.Publisher, o.RecordTopic = bus, eventstore.DefaultRecordTopic
	})

	const n = 300
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range n {
			_, err := s.Append(context.Background(), eventstore.DefaultChain, draft(i))
			assert.NoError(t, err)
		}
	}()
	for want := uint64(1); want <= n; want++ {
		select {
		case m := <-msgs:
			assert.Equal(t, strconv.FormatUint(want, 10), m.Metadata.Get("seq"))
			assert.Equal(t, "test.appended", m.Metadata.Get("type"))
			v, err := eventstore.ParseStored(m.Payload)
			require.NoError(t, err)
			assert.Equal(t, want, v.Seq)
			assert.Equal(t, string(v.ID), m.UUID)
			m.Ack()
		case <-time.After(10 * time.Second):
			t.Fatalf("record %d not published", want)
		}
	}
	<-done
}

// TestPublishesDurableHeads checks the head topic: heads arrive in order,
// each durable when it arrives, the last one the store's head; and no record
// is published unless RecordTopic is set.
func TestPublishesDurableHeads(t *testing.T) {
	t.Parallel()
	bus := gochannel.NewGoChannel(gochannel.Config{BlockPublishUntilSubscriberAck: true}, watermill.NopLogger{})
	defer bus.Close()
	heads, err := bus.Subscribe(context.Background(), eventstore.DefaultHeadTopic)
	require.NoError(t, err)
	records, err := bus.Subscribe(context.Background(), eventstore.DefaultRecordTopic)
	require.NoError(t, err)
	s := open(t, vfs.NewMem(), "/d", func(o *eventstore.Options) { o.Publisher = bus })

	const writers, each = 8, 40
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				_, err := s.Append(context.Background(), eventstore.DefaultChain, draft(w*each+i))
				assert.NoError(t, err)
			}
		})
	}
	last := uint64(0)
	for last < writers*each {
		select {
		case m := <-heads:
			var h eventstore.HeadMessage
			require.NoError(t, json.Unmarshal(m.Payload, &h))
			require.Equal(t, eventstore.DefaultChain, h.Chain)
			require.Greater(t, h.Seq, last, "heads move forward")
			require.Equal(t, strconv.FormatUint(h.Seq, 10), m.Metadata.Get("seq"))
			r, err := s.Get(context.Background(), eventstore.DefaultChain, h.Seq)
			require.NoError(t, err, "a published head is durable and readable")
			require.Equal(t, hex.EncodeToString(r.Hash[:]), h.Hash)
			last = h.Seq
			m.Ack()
		case m := <-records:
			t.Fatalf("record %s published without RecordTopic", m.UUID)
		case <-time.After(10 * time.Second):
			t.Fatalf("head stuck at %d", last)
		}
	}
	wg.Wait()
	head, err := s.Head(eventstore.DefaultChain)
	require.NoError(t, err)
	require.Equal(t, head.Seq, last)
}
