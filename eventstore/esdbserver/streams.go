package esdbserver

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"strconv"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/ordo-dev/ordo/eventstore/esdbserver/storage"
)

// streamsService implements the Streams gRPC service.
type streamsService struct {
	streams.UnimplementedStreamsServer // BatchAppend: never called by the Go client
	srv                                *Server
}

// Append receives options, then one proposed message per event, then the
// half-close, and answers once the events are durable. Messages are decoded
// by hand into appendMsg (decode.go).
func (s *streamsService) Append(stream streams.Streams_AppendServer) error {
	var m appendMsg
	if err := stream.RecvMsg(&m); err != nil {
		if errors.Is(err, io.EOF) {
			return status.Error(codes.InvalidArgument, "append request without any message: the first must carry options (stream and expected revision)")
		}
		return err
	}
	if m.content != contentOptions {
		return status.Error(codes.InvalidArgument, "the first append message must carry options")
	}
	name := m.stream
	if err := checkStreamName(name); err != nil {
		return err
	}
	exp := m.expected
	var events []storage.ProposedEvent
	size := 0
	for {
		err := stream.RecvMsg(&m)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if m.content != contentProposed {
			return status.Error(codes.InvalidArgument, "append messages after the options must be proposed messages")
		}
		ev, err := m.proposedEvent()
		if err != nil {
			return withTrailer(stream, err, "exception", "missing-required-metadata-property")
		}
		// Event data and custom metadata count against the limit.
		if size += len(ev.Data) + len(ev.CustomMetadata); size > s.srv.cfg.MaxAppendSize {
			stream.SetTrailer(metadata.Pairs("exception", "maximum-append-size-exceeded",
				"maximum-append-size", strconv.Itoa(s.srv.cfg.MaxAppendSize)))
			return status.Errorf(codes.InvalidArgument, "maximum append size of %d bytes exceeded", s.srv.cfg.MaxAppendSize)
		}
		events = append(events, ev)
	}
	res, err := s.srv.store.Append(stream.Context(), name, exp, events)
	if err != nil {
		var wev *storage.WrongExpectedVersionError
		if errors.As(err, &wev) {
			return stream.SendAndClose(&streams.AppendResp{Result: &streams.AppendResp_WrongExpectedVersion_{
				WrongExpectedVersion: wrongExpectedVersion(wev)}})
		}
		return s.srv.storeError(stream, name, err)
	}
	if res.NoPosition {
		res = s.srv.emptyAppendPosition(res)
	}
	return stream.SendMsg(encodeAppendSuccess(res))
}

// emptyAppendPosition gives an append without events a position, as
// EventStoreDB does: it writes an empty record for it and answers with that
// record's log position, after every record before the append and before
// every one after it. The store writes nothing for it; its durable head is
// the nearest position (a subscription or wait from it misses nothing that
// came after the append).
func (srv *Server) emptyAppendPosition(res storage.AppendResult) storage.AppendResult {
	if head := srv.store.Head(); head > 0 {
		res.NoPosition, res.Position = false, head
	}
	return res
}

func checkStreamName(name string) error {
	if name == "" {
		return status.Error(codes.InvalidArgument, "stream name is empty")
	}
	for i := 0; i < len(name); i++ {
		if name[i] == 0 {
			return status.Error(codes.InvalidArgument, "stream name contains a NUL byte")
		}
	}
	return nil
}

func appendExpected(o *streams.AppendReq_Options) storage.Expected {
	switch v := o.GetExpectedStreamRevision().(type) {
	case *streams.AppendReq_Options_Revision:
		return storage.Expected{Kind: storage.ExpectRevision, Revision: storage.Revision(v.Revision)}
	case *streams.AppendReq_Options_NoStream:
		return storage.Expected{Kind: storage.ExpectNoStream}
	case *streams.AppendReq_Options_StreamExists:
		return storage.Expected{Kind: storage.ExpectStreamExists}
	default:
		return storage.Expected{Kind: storage.ExpectAny}
	}
}

// proposedEvent converts a proposed message; a missing ID gets a random
// one, as EventStoreDB does.
func (m *appendMsg) proposedEvent() (storage.ProposedEvent, error) {
	if !m.hasTyp || !m.hasCT {
		return storage.ProposedEvent{}, status.Error(codes.InvalidArgument, "proposed message metadata must contain type and content-type")
	}
	var id [16]byte
	switch m.idForm {
	case idStructured:
		id = m.idBits
	case idString:
		parsed, err := uuid.Parse(m.idString)
		if err != nil {
			return storage.ProposedEvent{}, status.Errorf(codes.InvalidArgument, "event id: %v", err)
		}
		id = parsed
	default:
		id = uuid.New()
	}
	return storage.ProposedEvent{ID: id, Type: m.typ, IsJSON: m.ct == "application/json",
		Data: m.data, CustomMetadata: m.custMeta}, nil
}

func idToProto(id [16]byte) *shared.UUID {
	return &shared.UUID{Value: &shared.UUID_Structured_{Structured: &shared.UUID_Structured{
		MostSignificantBits:  int64(binary.BigEndian.Uint64(id[:8])),
		LeastSignificantBits: int64(binary.BigEndian.Uint64(id[8:])),
	}}}
}

func wrongExpectedVersion(w *storage.WrongExpectedVersionError) *streams.AppendResp_WrongExpectedVersion {
	r := &streams.AppendResp_WrongExpectedVersion{}
	if w.CurrentNoStream {
		r.CurrentRevisionOption = &streams.AppendResp_WrongExpectedVersion_CurrentNoStream{CurrentNoStream: &shared.Empty{}}
		r.CurrentRevisionOption_20_6_0 = &streams.AppendResp_WrongExpectedVersion_NoStream_20_6_0{NoStream_20_6_0: &shared.Empty{}}
	} else {
		r.CurrentRevisionOption = &streams.AppendResp_WrongExpectedVersion_CurrentRevision{CurrentRevision: uint64(w.Current)}
		r.CurrentRevisionOption_20_6_0 = &streams.AppendResp_WrongExpectedVersion_CurrentRevision_20_6_0{CurrentRevision_20_6_0: uint64(w.Current)}
	}
	switch w.Expected.Kind {
	case storage.ExpectRevision:
		r.ExpectedRevisionOption = &streams.AppendResp_WrongExpectedVersion_ExpectedRevision{ExpectedRevision: uint64(w.Expected.Revision)}
		r.ExpectedRevisionOption_20_6_0 = &streams.AppendResp_WrongExpectedVersion_ExpectedRevision_20_6_0{ExpectedRevision_20_6_0: uint64(w.Expected.Revision)}
	case storage.ExpectNoStream:
		r.ExpectedRevisionOption = &streams.AppendResp_WrongExpectedVersion_ExpectedNoStream{ExpectedNoStream: &shared.Empty{}}
	case storage.ExpectStreamExists:
		r.ExpectedRevisionOption = &streams.AppendResp_WrongExpectedVersion_ExpectedStreamExists{ExpectedStreamExists: &shared.Empty{}}
		r.ExpectedRevisionOption_20_6_0 = &streams.AppendResp_WrongExpectedVersion_StreamExists_20_6_0{StreamExists_20_6_0: &shared.Empty{}}
	default:
		r.ExpectedRevisionOption = &streams.AppendResp_WrongExpectedVersion_ExpectedAny{ExpectedAny: &shared.Empty{}}
		r.ExpectedRevisionOption_20_6_0 = &streams.AppendResp_WrongExpectedVersion_Any_20_6_0{Any_20_6_0: &shared.Empty{}}
	}
	return r
}

// trailerSetter is what both unary contexts and server streams can do.
type trailerSetter interface{ SetTrailer(metadata.MD) }

func withTrailer(ts trailerSetter, err error, kv ...string) error {
	ts.SetTrailer(metadata.Pairs(kv...))
	return err
}

// storeError maps a storage error to the status and trailers EventStoreDB
// sends; the client recognises a deleted stream only by its trailers.
func (srv *Server) storeError(ts trailerSetter, stream string, err error) error {
	switch {
	case errors.Is(err, storage.ErrStreamDeleted):
		return withTrailer(ts, status.Errorf(codes.FailedPrecondition, "stream %q is deleted", stream),
			"exception", "stream-deleted", "stream-name", stream)
	case errors.Is(err, storage.ErrInvalidRequest):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, storage.ErrClosed):
		return status.Error(codes.Unavailable, "the event store is shutting down")
	case errors.Is(err, storage.ErrDiskFull):
		// Not Unavailable: the official client answers that by dropping
		// its connection and discovering the node again, on every refusal.
		return status.Error(codes.ResourceExhausted, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case status.Code(err) != codes.Unknown:
		return err
	}
	srv.log.Error("event store operation failed", "stream", stream, "err", err)
	return status.Errorf(codes.Internal, "event store failure: %v", err)
}

// unaryTrailer sets trailers from a unary handler's context.
type unaryTrailer struct{ ctx context.Context }

func (u unaryTrailer) SetTrailer(md metadata.MD) { _ = grpc.SetTrailer(u.ctx, md) }

func deleteExpected(rev any) storage.Expected {
	switch v := rev.(type) {
	case *streams.DeleteReq_Options_Revision:
		return storage.Expected{Kind: storage.ExpectRevision, Revision: storage.Revision(v.Revision)}
	case *streams.DeleteReq_Options_NoStream:
		return storage.Expected{Kind: storage.ExpectNoStream}
	case *streams.DeleteReq_Options_StreamExists:
		return storage.Expected{Kind: storage.ExpectStreamExists}
	case *streams.TombstoneReq_Options_Revision:
		return storage.Expected{Kind: storage.ExpectRevision, Revision: storage.Revision(v.Revision)}
	case *streams.TombstoneReq_Options_NoStream:
		return storage.Expected{Kind: storage.ExpectNoStream}
	case *streams.TombstoneReq_Options_StreamExists:
		return storage.Expected{Kind: storage.ExpectStreamExists}
	}
	return storage.Expected{Kind: storage.ExpectAny}
}

// deleteError maps delete/tombstone failures; a wrong expected version is a
// FailedPrecondition with details in trailers here, not a response body.
func (srv *Server) deleteError(ctx context.Context, stream string, err error) error {
	var wev *storage.WrongExpectedVersionError
	if errors.As(err, &wev) {
		actual := "-1"
		if !wev.CurrentNoStream {
			actual = strconv.FormatUint(uint64(wev.Current), 10)
		}
		return withTrailer(unaryTrailer{ctx}, status.Errorf(codes.FailedPrecondition, "%v", wev),
			"exception", "wrong-expected-version", "stream-name", stream,
			"expected-version", expectedString(wev.Expected), "actual-version", actual)
	}
	return srv.storeError(unaryTrailer{ctx}, stream, err)
}

func expectedString(e storage.Expected) string {
	switch e.Kind {
	case storage.ExpectRevision:
		return strconv.FormatUint(uint64(e.Revision), 10)
	case storage.ExpectNoStream:
		return "-1"
	case storage.ExpectStreamExists:
		return "-4"
	}
	return "-2"
}

// Delete soft-deletes a stream.
func (s *streamsService) Delete(ctx context.Context, req *streams.DeleteReq) (*streams.DeleteResp, error) {
	o := req.GetOptions()
	p, err := s.remove(ctx, o.GetStreamIdentifier(), deleteExpected(o.GetExpectedStreamRevision()), s.srv.store.Delete)
	if err != nil {
		return nil, err
	}
	return &streams.DeleteResp{PositionOption: &streams.DeleteResp_Position_{
		Position: &streams.DeleteResp_Position{CommitPosition: p, PreparePosition: p}}}, nil
}

// Tombstone deletes a stream for good.
func (s *streamsService) Tombstone(ctx context.Context, req *streams.TombstoneReq) (*streams.TombstoneResp, error) {
	o := req.GetOptions()
	p, err := s.remove(ctx, o.GetStreamIdentifier(), deleteExpected(o.GetExpectedStreamRevision()), s.srv.store.Tombstone)
	if err != nil {
		return nil, err
	}
	return &streams.TombstoneResp{PositionOption: &streams.TombstoneResp_Position_{
		Position: &streams.TombstoneResp_Position{CommitPosition: p, PreparePosition: p}}}, nil
}

// remove is Delete and Tombstone: the stream id names removed by store
// (the store's Delete or Tombstone) under exp, at the returned position.
func (s *streamsService) remove(ctx context.Context, id *shared.StreamIdentifier, exp storage.Expected,
	store func(context.Context, string, storage.Expected) (storage.Position, error)) (uint64, error) {
	name := string(id.GetStreamName())
	if err := checkStreamName(name); err != nil {
		return 0, err
	}
	pos, err := store(ctx, name, exp)
	if err != nil {
		return 0, s.srv.deleteError(ctx, name, err)
	}
	return uint64(pos), nil
}
