package eventstore_test

import (
	"context"
	"strconv"
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
	msgs, err := bus.Subscribe(context.Background(), "custos.records")
	require.NoError(t, err)
	fs := vfs.NewMem()
	s := open(t, fs, "/d", func(o *eventstore.Options) { o.Publisher = bus })

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
