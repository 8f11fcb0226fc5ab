package nats

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// LoadResult summarises a closed-loop load run.
type LoadResult struct {
	Ops      int           `json:"ops"`
	Duration time.Duration `json:"duration_ns"`
	PerSec   float64       `json:"ops_per_sec"`
	P50      time.Duration `json:"p50_ns"`
	P95      time.Duration `json:"p95_ns"`
	P99      time.Duration `json:"p99_ns"`
	Errors   int           `json:"errors"`
}

// Summarize turns per-operation latencies into a LoadResult.
func Summarize(lat []time.Duration, errors int, elapsed time.Duration) LoadResult {
	r := LoadResult{Ops: len(lat), Duration: elapsed, Errors: errors}
	if len(lat) == 0 {
		return r
	}
	slices.Sort(lat)
	q := func(p float64) time.Duration { return lat[int(p*float64(len(lat)-1))] }
	r.PerSec = float64(len(lat)) / elapsed.Seconds()
	r.P50, r.P95, r.P99 = q(0.50), q(0.95), q(0.99)
	return r
}

// MeasureRoundTrip measures the bare command transport, with no store
// behind it: clients publish to a scratch JetStream stream, a Consume()
// worker acknowledges each message and replies to the requester's inbox,
// exactly the path commands take minus the executor. It is the ceiling the
// command service is compared with.
func MeasureRoundTrip(ctx context.Context, nc *natsgo.Conn, clients int, d time.Duration) (LoadResult, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return LoadResult{}, err
	}
	name := "ORDO_BENCH_" + uuid.NewString()[:8]
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{"ordo.bench." + name + ".>"},
		Storage: jetstream.FileStorage, Retention: jetstream.LimitsPolicy, MaxAge: time.Hour, Duplicates: 2 * time.Minute})
	if err != nil {
		return LoadResult{}, fmt.Errorf("create bench stream: %w", err)
	}
	defer js.DeleteStream(context.WithoutCancel(ctx), name)
	cons, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "bench", AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 1024})
	if err != nil {
		return LoadResult{}, err
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		_ = m.Ack()
		r := natsgo.NewMsg(m.Headers().Get(HeaderReplyTo))
		r.Data = []byte(`{}`)
		_ = nc.PublishMsg(r)
	})
	if err != nil {
		return LoadResult{}, err
	}
	defer cc.Stop()
	// One inbox per client, as the command client keeps one per connection.
	inboxes := make([]string, clients)
	subs := make([]*natsgo.Subscription, clients)
	for c := range subs {
		inboxes[c] = nc.NewInbox()
		if subs[c], err = nc.SubscribeSync(inboxes[c]); err != nil {
			return LoadResult{}, err
		}
		defer subs[c].Unsubscribe()
	}
	return RunLoad(ctx, clients, d, func(ctx context.Context, client, i int) error {
		sub := subs[client]
		m := natsgo.NewMsg(fmt.Sprintf("ordo.bench.%s.%d", name, client))
		m.Header.Set(HeaderMsgID, uuid.NewString())
		m.Header.Set(HeaderReplyTo, inboxes[client])
		m.Data = []byte(`{"bench":true}`)
		if _, err := js.PublishMsg(ctx, m); err != nil {
			return err
		}
		_, err := sub.NextMsgWithContext(ctx)
		return err
	})
}

// RunLoad runs op in a closed loop on clients goroutines for d and
// summarises the latencies of the operations that succeeded.
func RunLoad(ctx context.Context, clients int, d time.Duration, op func(ctx context.Context, client, i int) error) (LoadResult, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	lat := make([][]time.Duration, clients)
	errs := make([]int, clients)
	var wg sync.WaitGroup
	start := time.Now()
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				t0 := time.Now()
				if err := op(ctx, c, i); err != nil {
					if ctx.Err() == nil {
						errs[c]++
					}
					continue
				}
				lat[c] = append(lat[c], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	total := 0
	for _, e := range errs {
		total += e
	}
	return Summarize(slices.Concat(lat...), total, time.Since(start)), nil
}
