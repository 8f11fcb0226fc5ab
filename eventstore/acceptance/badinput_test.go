package acceptance

import (
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

// TestBadInput sends malformed requests with the raw generated client: each
// gets the error EventStoreDB gives, and the store keeps working.
func TestBadInput(t *testing.T) {
	srv := startEmbedded(t, t.TempDir(), 0)
	conn, err := grpc.NewClient(srv.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	raw := streams.NewStreamsClient(conn)
	id := func(s string) *shared.StreamIdentifier { return &shared.StreamIdentifier{StreamName: []byte(s)} }
	opts := func(s string) *streams.AppendReq {
		return &streams.AppendReq{Content: &streams.AppendReq_Options_{Options: &streams.AppendReq_Options{
			StreamIdentifier: id(s), ExpectedStreamRevision: &streams.AppendReq_Options_Any{Any: &shared.Empty{}}}}}
	}
	msg := func(md map[string]string, uuid *shared.UUID) *streams.AppendReq {
		return &streams.AppendReq{Content: &streams.AppendReq_ProposedMessage_{ProposedMessage: &streams.AppendReq_ProposedMessage{
			Id: uuid, Metadata: md, Data: []byte(`{}`)}}}
	}
	good := map[string]string{"type": "T", "content-type": "application/json"}
	appendRaw := func(reqs ...*streams.AppendReq) (*streams.AppendResp, error) {
		stream, err := raw.Append(ctxT(t))
		if err != nil {
			return nil, err
		}
		for _, r := range reqs {
			if err := stream.Send(r); err != nil {
				break
			}
		}
		return stream.CloseAndRecv()
	}
	appendCases := []struct {
		name    string
		reqs    []*streams.AppendReq
		trailer string
	}{
		{"event before options", []*streams.AppendReq{msg(good, nil)}, ""},
		{"empty stream name", []*streams.AppendReq{opts(""), msg(good, nil)}, ""},
		{"missing type", []*streams.AppendReq{opts("bad-1"), msg(map[string]string{"content-type": "application/json"}, nil)}, "missing-required-metadata-property"},
		{"missing content type", []*streams.AppendReq{opts("bad-1"), msg(map[string]string{"type": "T"}, nil)}, "missing-required-metadata-property"},
		{"malformed uuid", []*streams.AppendReq{opts("bad-1"), msg(good, &shared.UUID{Value: &shared.UUID_String_{String_: "not-a-uuid"}})}, ""},
		{"options twice", []*streams.AppendReq{opts("bad-1"), opts("bad-1")}, ""},
	}
	for _, tc := range appendCases {
		_, err := appendRaw(tc.reqs...)
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s: got %v, want InvalidArgument", tc.name, err)
		}
	}
	readCases := []struct {
		name string
		req  *streams.ReadReq
	}{
		{"no options", &streams.ReadReq{}},
		{"neither stream nor all", &streams.ReadReq{Options: &streams.ReadReq_Options{CountOption: &streams.ReadReq_Options_Count{Count: 1}}}},
		{"filter multiplier 0", &streams.ReadReq{Options: &streams.ReadReq_Options{
			StreamOption: &streams.ReadReq_Options_All{All: &streams.ReadReq_Options_AllOptions{AllOption: &streams.ReadReq_Options_AllOptions_Start{Start: &shared.Empty{}}}},
			CountOption:  &streams.ReadReq_Options_Subscription{Subscription: &streams.ReadReq_Options_SubscriptionOptions{}},
			FilterOption: &streams.ReadReq_Options_Filter{Filter: &streams.ReadReq_Options_FilterOptions{
				Filter: &streams.ReadReq_Options_FilterOptions_StreamIdentifier{StreamIdentifier: &streams.ReadReq_Options_FilterOptions_Expression{Prefix: []string{"x"}}}}}}}},
		{"bad regex", &streams.ReadReq{Options: &streams.ReadReq_Options{
			StreamOption: &streams.ReadReq_Options_All{All: &streams.ReadReq_Options_AllOptions{AllOption: &streams.ReadReq_Options_AllOptions_Start{Start: &shared.Empty{}}}},
			CountOption:  &streams.ReadReq_Options_Count{Count: 5},
			FilterOption: &streams.ReadReq_Options_Filter{Filter: &streams.ReadReq_Options_FilterOptions{CheckpointIntervalMultiplier: 1,
				Filter: &streams.ReadReq_Options_FilterOptions_StreamIdentifier{StreamIdentifier: &streams.ReadReq_Options_FilterOptions_Expression{Regex: "(["}}}}}}},
	}
	for _, tc := range readCases {
		rs, err := raw.Read(ctxT(t), tc.req)
		if err == nil {
			_, err = rs.Recv()
		}
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s: got %v, want InvalidArgument", tc.name, err)
		}
	}
	// The store is intact and still serves.
	c := esdbtest.Connect(t, srv.URL())
	appendOK(t, c, "after-bad-input", esdb.NoStream{}, events(2)...)
	if evs, err := readAll(t, c, "after-bad-input", esdb.ReadStreamOptions{}, 10); err != nil || len(evs) != 2 {
		t.Fatalf("after bad input: %d events, %v", len(evs), err)
	}
	if evs, err := readAll(t, c, "bad-1", esdb.ReadStreamOptions{}, 10); code(err) != esdb.ErrorCodeResourceNotFound {
		t.Fatalf("rejected appends left %d events in bad-1 (%v)", len(evs), err)
	}
}
