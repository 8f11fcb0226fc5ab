package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ordo-dev/ordo/eventstore"
	"github.com/ordo-dev/ordo/eventstore/esdbserver"
)

// TestOutageThroughGRPC stops the server a Store is connected to, keeps
// writers appending through the outage, and starts the server again on the
// same address and data: during the outage every call returns within its
// deadline with ErrUnavailable (none blocks inside the client), after it
// the first append succeeds within two seconds and every writer goes on,
// and a subscription resumes from where it was. The official client
// v4.2.0 closes itself for good after about a second without the server.
func TestOutageThroughGRPC(t *testing.T) {
	outages := []time.Duration{1500 * time.Millisecond, 4 * time.Second}
	if testing.Short() {
		outages = outages[:1]
	}
	dir := t.TempDir()
	srv := startServer(t, dir, "127.0.0.1:0")
	addr := srv.Addr().String()
	ctx := context.Background()
	s, err := eventstore.Connect(ctx, srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, outage := range outages {
		t.Run(outage.String(), func(t *testing.T) {
			stream := "outage-" + uuid.NewString()
			if _, err := s.Append(ctx, stream, eventstore.NoStream(), event("Before")); err != nil {
				t.Fatal(err)
			}
			sub, err := s.SubscribeAll(ctx, eventstore.SubscribeOptions{Filter: eventstore.Filter{StreamPrefixes: []string{stream}}, FromStart: true})
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			if got := nextEvent(t, sub); got.Type != "Before" {
				t.Fatalf("subscription: got %s, want Before", got.Type)
			}

			stop := make(chan struct{})
			var hung, ok, unavailable atomic.Int64
			var wg sync.WaitGroup
			for w := range 16 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					writer := fmt.Sprintf("writer-%s-%d", stream, w)
					for {
						select {
						case <-stop:
							return
						default:
						}
						cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
						start := time.Now()
						_, err := s.Append(cctx, writer, eventstore.Any(), event("W"))
						cancel()
						switch {
						case time.Since(start) > 3*time.Second:
							hung.Add(1)
						case err == nil:
							ok.Add(1)
						case errors.Is(err, eventstore.ErrUnavailable):
							unavailable.Add(1)
							time.Sleep(20 * time.Millisecond)
						default:
							t.Errorf("append during the outage: %v, want ErrUnavailable", err)
							return
						}
					}
				}()
			}
			time.Sleep(200 * time.Millisecond)
			srv.Close()
			down := time.Now()
			for {
				// The caught-up news may come first.
				m, err := sub.Next(ctxTimeout(t, 10*time.Second))
				if err != nil {
					if !errors.Is(err, eventstore.ErrUnavailable) {
						t.Fatalf("subscription during the outage: %v, want ErrUnavailable", err)
					}
					break
				}
				if m.Event != nil {
					t.Fatalf("subscription during the outage: event %s", m.Event.Type)
				}
			}
			time.Sleep(outage - time.Since(down))
			if n := unavailable.Load(); n == 0 {
				t.Fatal("no append failed during the outage")
			}
			okBefore := ok.Load()
			srv = startServer(t, dir, addr)
			back := time.Now()
			var first time.Duration
			for first == 0 {
				cctx, cancel := context.WithTimeout(ctx, time.Second)
				if _, err := s.Append(cctx, stream, eventstore.Any(), event("After")); err == nil {
					first = time.Since(back)
				} else if time.Since(back) > 10*time.Second {
					t.Fatalf("no append succeeded within 10 s of the store's return: %v", err)
				}
				cancel()
			}
			if first > 2*time.Second {
				t.Errorf("the first append succeeded %v after the store returned, want within 2 s", first)
			}
			deadline := time.Now().Add(5 * time.Second)
			for ok.Load() < okBefore+16*5 && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			close(stop)
			wg.Wait()
			if n := hung.Load(); n > 0 {
				t.Errorf("%d appends blocked past their deadline", n)
			}
			if ok.Load() < okBefore+16*5 {
				t.Errorf("the writers made %d appends in 5 s after the store returned, want at least %d", ok.Load()-okBefore, 16*5)
			}
			sub2, err := s.SubscribeAll(ctx, eventstore.SubscribeOptions{Filter: eventstore.Filter{StreamPrefixes: []string{stream}}, FromStart: true})
			if err != nil {
				t.Fatalf("subscribe after the outage: %v", err)
			}
			defer sub2.Close()
			if got := nextEvent(t, sub2); got.Type != "Before" {
				t.Fatalf("resubscribed: got %s, want Before", got.Type)
			}
			t.Logf("outage %v: %d appends refused, first success %v after the return", outage, unavailable.Load(), first.Round(time.Millisecond))
		})
	}
	srv.Close()
}

func startServer(tb testing.TB, dir, addr string) *esdbserver.Server {
	tb.Helper()
	var srv *esdbserver.Server
	var err error
	// The address was just released; retry briefly if the port lingers.
	for range 50 {
		if srv, err = esdbserver.Start(context.Background(), esdbserver.Config{DataDir: dir, Listen: addr}); err == nil {
			return srv
		}
		time.Sleep(100 * time.Millisecond)
	}
	tb.Fatal(err)
	return nil
}

func event(typ string) eventstore.EventData {
	return eventstore.EventData{ID: uuid.New(), Type: typ, Data: []byte(`{}`)}
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func nextEvent(t *testing.T, sub *eventstore.Subscription) eventstore.RecordedEvent {
	t.Helper()
	for {
		m, err := sub.Next(ctxTimeout(t, 10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if m.Event != nil {
			return *m.Event
		}
	}
}
