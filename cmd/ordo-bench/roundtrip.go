package main

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	ordonats "github.com/ordo-dev/ordo/nats"
)

// measureRoundTrip measures the bare command transport, with no store
// behind it: clients publish to a scratch JetStream stream, a Consume()
// worker acknowledges each message and replies to the requester's inbox,
// exactly the path commands take minus the executor. It is the ceiling the
// command service is compared with.
func measureRoundTrip(ctx context.Context, nc *natsgo.Conn, clients int, d time.Duration) (loadResult, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return loadResult{}, err
	}
	name := "ORDO_BENCH_" + uuid.NewString()[:8]
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{"ordo.bench." + name + ".>"},
		Storage: jetstream.FileStorage, Retention: jetstream.LimitsPolicy, MaxAge: time.Hour, Duplicates: 2 * time.Minute})
	if err != nil {
		return loadResult{}, fmt.Errorf("create bench stream: %w", err)
	}
	defer js.DeleteStream(context.WithoutCancel(ctx), name)
	cons, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "bench", AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 1024})
	if err != nil {
		return loadResult{}, err
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		_ = m.Ack()
		r := natsgo.NewMsg(m.Headers().Get(ordonats.HeaderReplyTo))
		r.Data = []byte(`{}`)
		_ = nc.PublishMsg(r)
	})
	if err != nil {
		return loadResult{}, err
	}
	defer cc.Stop()
	// One inbox per client, as the command client keeps one per connection.
	inboxes := make([]string, clients)
	subs := make([]*natsgo.Subscription, clients)
	for c := range subs {
		inboxes[c] = nc.NewInbox()
		if subs[c], err = nc.SubscribeSync(inboxes[c]); err != nil {
			return loadResult{}, err
		}
		defer subs[c].Unsubscribe()
	}
	return runLoad(ctx, clients, d, func(ctx context.Context, client, i int) error {
		m := natsgo.NewMsg(fmt.Sprintf("ordo.bench.%s.%d", name, client))
		m.Header.Set(ordonats.HeaderMsgID, uuid.NewString())
		m.Header.Set(ordonats.HeaderReplyTo, inboxes[client])
		m.Data = []byte(`{"bench":true}`)
		if _, err := js.PublishMsg(ctx, m); err != nil {
			return err
		}
		_, err := subs[client].NextMsgWithContext(ctx)
		return err
	}), nil
}
