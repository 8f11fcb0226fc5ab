package acceptance

import (
	"math"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/ordo-dev/ordo/eventstore/esdbtest"
)

// TestHugeFilterRegexRefused: a 100 KiB regular expression in an $all
// filter is refused with InvalidArgument before it costs anything, on
// reads and subscriptions, and the server's memory stays where it was
// after it and after ordinary reads. (Compiled and matched, such a pattern
// made Go's regexp engine allocate a slot array per capture group for
// every match thread: 100 MB to gigabytes for one request.)
func TestHugeFilterRegexRefused(t *testing.T) {
	if os.Getenv("ORDO_ESDB_URL") != "" {
		t.Skip("measures the embedded server's memory in this process")
	}
	srv := startEmbedded(t, t.TempDir(), 0)
	c := esdbtest.Connect(t, srv.URL())
	for i := 0; i < 20; i++ {
		appendOK(t, c, name("limits"), esdb.NoStream{}, events(5)...)
	}
	conn, err := grpc.NewClient(srv.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	raw := streams.NewStreamsClient(conn)
	huge := strings.Repeat("()", 50<<10) // 100 KiB, 51,200 capture groups

	var before, afterRefusal, afterReads runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for _, req := range []*streams.ReadReq{filteredRead(huge, false), filteredRead(huge, true)} {
		rs, err := raw.Read(ctxT(t), req)
		if err == nil {
			_, err = rs.Recv()
		}
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), "longer than the limit") {
			t.Errorf("a 100 KiB filter regex (subscription %v): got %v, want InvalidArgument naming the limit", req.GetOptions().GetSubscription() != nil, err)
		}
	}
	runtime.ReadMemStats(&afterRefusal)
	if d := afterRefusal.TotalAlloc - before.TotalAlloc; d > 16<<20 {
		t.Errorf("refusing the regex allocated %d MB in this process, want under 16 MB", d>>20)
	}

	// The official client sees the refusal as an error, not a hang.
	if sub, err := c.SubscribeToAll(ctxT(t), esdb.SubscribeToAllOptions{
		Filter: &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Regex: huge}}); err == nil {
		sub.Close()
		t.Error("the official client subscribed with a 100 KiB filter regex")
	}

	for i := 0; i < 20; i++ {
		rs, err := c.ReadAll(ctxT(t), esdb.ReadAllOptions{}, math.MaxUint64)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(drain(t, rs)); n < 100 {
			t.Fatalf("an ordinary $all read returned %d events, want at least 100", n)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&afterReads)
	t.Logf("refusing two 100 KiB regexes allocated %d KB; heap in use %d MB before, %d MB after 20 ordinary reads",
		(afterRefusal.TotalAlloc-before.TotalAlloc)>>10, before.HeapInuse>>20, afterReads.HeapInuse>>20)
	if afterReads.HeapInuse > before.HeapInuse+32<<20 {
		t.Errorf("heap in use grew from %d MB to %d MB over the refusal and 20 ordinary reads", before.HeapInuse>>20, afterReads.HeapInuse>>20)
	}
}

// filteredRead is an $all read (or subscription) with a stream regex filter.
func filteredRead(regex string, subscribe bool) *streams.ReadReq {
	o := &streams.ReadReq_Options{
		StreamOption: &streams.ReadReq_Options_All{All: &streams.ReadReq_Options_AllOptions{
			AllOption: &streams.ReadReq_Options_AllOptions_Start{Start: &shared.Empty{}}}},
		CountOption: &streams.ReadReq_Options_Count{Count: 10},
		FilterOption: &streams.ReadReq_Options_Filter{Filter: &streams.ReadReq_Options_FilterOptions{
			CheckpointIntervalMultiplier: 1,
			Window:                       &streams.ReadReq_Options_FilterOptions_Max{Max: 32},
			Filter: &streams.ReadReq_Options_FilterOptions_StreamIdentifier{
				StreamIdentifier: &streams.ReadReq_Options_FilterOptions_Expression{Regex: regex}}}},
		UuidOption: &streams.ReadReq_Options_UUIDOption{Content: &streams.ReadReq_Options_UUIDOption_Structured{Structured: &shared.Empty{}}},
	}
	if subscribe {
		o.CountOption = &streams.ReadReq_Options_Subscription{Subscription: &streams.ReadReq_Options_SubscriptionOptions{}}
	}
	return &streams.ReadReq{Options: o}
}
