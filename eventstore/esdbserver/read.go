package esdbserver

import (
	"context"
	"errors"
	"math"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ordo-dev/ordo/eventstore/esdbserver/storage"
)

// defaultCheckpointWindow is EventStoreDB's default filter search window;
// a "count" window also checkpoints every 32 considered events.
const defaultCheckpointWindow = 32

// Read serves reads and subscriptions of a stream or of $all.
func (s *streamsService) Read(req *streams.ReadReq, out streams.Streams_ReadServer) error {
	o := req.GetOptions()
	if o == nil {
		return status.Error(codes.InvalidArgument, "read request without options")
	}
	filter, window, err := readFilter(o)
	if err != nil {
		return err
	}
	if o.GetSubscription() != nil {
		return s.subscribe(o, filter, window, out)
	}
	dir := storage.Forwards
	if o.GetReadDirection() == streams.ReadReq_Options_Backwards {
		dir = storage.Backwards
	}
	resolve := o.GetResolveLinks()
	send := func(r storage.Record) error { return s.srv.sendEvent(out.Context(), out, r, resolve) }
	if st := o.GetStream(); st != nil {
		name := string(st.GetStreamIdentifier().GetStreamName())
		if err := checkStreamName(name); err != nil {
			return err
		}
		from, fromEnd := streamStart(st)
		err := s.srv.store.ReadStream(out.Context(), name, from, fromEnd, dir, o.GetCount(), send)
		if errors.Is(err, storage.ErrStreamNotFound) {
			// Not found is a message, then a normal end of the call.
			return out.Send(&streams.ReadResp{Content: &streams.ReadResp_StreamNotFound_{
				StreamNotFound: &streams.ReadResp_StreamNotFound{StreamIdentifier: st.GetStreamIdentifier()}}})
		}
		if err != nil {
			return s.srv.storeError(out, name, err)
		}
		return nil
	}
	all := o.GetAll()
	if all == nil {
		return status.Error(codes.InvalidArgument, "read request names neither a stream nor $all")
	}
	from := storage.Position(all.GetPosition().GetCommitPosition())
	if err := s.srv.store.ReadAll(out.Context(), from, all.GetEnd() != nil, dir, o.GetCount(), filter, send); err != nil {
		return s.srv.storeError(out, "$all", err)
	}
	return nil
}

// readFilter converts an $all filter and its checkpoint interval.
func readFilter(o *streams.ReadReq_Options) (storage.Filter, int, error) {
	f := o.GetFilter()
	if f == nil {
		return storage.Filter{}, 0, nil
	}
	var out storage.Filter
	switch {
	case f.GetStreamIdentifier() != nil:
		out.StreamPrefixes, out.StreamRegex = f.GetStreamIdentifier().GetPrefix(), f.GetStreamIdentifier().GetRegex()
	case f.GetEventType() != nil:
		out.TypePrefixes, out.TypeRegex = f.GetEventType().GetPrefix(), f.GetEventType().GetRegex()
	}
	window := defaultCheckpointWindow
	if m := f.GetMax(); m > 0 {
		window = int(m)
	}
	mult := int(f.GetCheckpointIntervalMultiplier())
	if mult == 0 {
		return out, 0, status.Error(codes.InvalidArgument, "checkpointIntervalMultiplier must be greater than 0")
	}
	return out, window * mult, nil
}

// subscribe confirms the subscription, then streams records, caught-up
// markers and (for filtered $all subscriptions) checkpoints until the client
// goes away or the stream is tombstoned.
func (s *streamsService) subscribe(o *streams.ReadReq_Options, filter storage.Filter, every int, out streams.Streams_ReadServer) error {
	ctx := out.Context()
	var sub *storage.Subscription
	var err error
	name := "$all"
	if st := o.GetStream(); st != nil {
		name = string(st.GetStreamIdentifier().GetStreamName())
		if err := checkStreamName(name); err != nil {
			return err
		}
		from, fromEnd := streamStart(st)
		sub, err = s.srv.store.SubscribeStream(ctx, name, storage.SubscribeStreamOptions{
			From: from, FromStart: st.GetStart() != nil, FromEnd: fromEnd})
	} else {
		all := o.GetAll()
		sub, err = s.srv.store.SubscribeAll(ctx, storage.SubscribeAllOptions{
			From:      storage.Position(all.GetPosition().GetCommitPosition()),
			FromStart: all.GetStart() != nil, FromEnd: all.GetEnd() != nil,
			Filter: filter, CheckpointInterval: every})
	}
	if err != nil {
		return s.srv.storeError(out, name, err)
	}
	defer sub.Close()
	confirm := &streams.ReadResp{Content: &streams.ReadResp_Confirmation{
		Confirmation: &streams.ReadResp_SubscriptionConfirmation{SubscriptionId: uuid.NewString()}}}
	if err := out.Send(confirm); err != nil {
		return err
	}
	for {
		m, err := sub.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return status.FromContextError(ctx.Err()).Err()
			}
			return s.srv.storeError(out, name, err)
		}
		var resp *streams.ReadResp
		switch m.Kind {
		case storage.MessageRecord:
			if err := s.srv.sendEvent(ctx, out, m.Record, o.GetResolveLinks()); err != nil {
				return err
			}
			continue
		case storage.MessageCaughtUp:
			resp = &streams.ReadResp{Content: &streams.ReadResp_CaughtUp_{CaughtUp: &streams.ReadResp_CaughtUp{}}}
		case storage.MessageCheckpoint:
			p := uint64(m.Checkpoint)
			resp = &streams.ReadResp{Content: &streams.ReadResp_Checkpoint_{
				Checkpoint: &streams.ReadResp_Checkpoint{CommitPosition: p, PreparePosition: p}}}
		default:
			continue
		}
		if err := out.Send(resp); err != nil {
			return err
		}
	}
}

// streamStart is where a stream read or subscription starts. The client
// may send any uint64: 2^64-1 is EventStoreDB's encoding of End
// (StreamRevision.End); anything else is a revision, which the store
// compares unsigned (forwards from beyond the last event reads nothing, a
// subscription after it waits for events beyond it).
func streamStart(st *streams.ReadReq_Options_StreamOptions) (from storage.Revision, fromEnd bool) {
	if st.GetEnd() != nil {
		return 0, true
	}
	if rev, ok := st.GetRevisionOption().(*streams.ReadReq_Options_StreamOptions_Revision); ok {
		if rev.Revision == math.MaxUint64 {
			return 0, true
		}
		return storage.Revision(rev.Revision), false
	}
	return 0, false
}

// sendEvent sends one event of a read or subscription. With resolveLinks,
// a link event ($> with data "<revision>@<stream>") goes out as the event
// it points to with the link attached, or as the link alone when the
// target cannot be read, as EventStoreDB does.
func (srv *Server) sendEvent(ctx context.Context, out grpc.ServerStream, r storage.Record, resolveLinks bool) error {
	if !resolveLinks || r.Type != storage.TypeLink {
		return out.SendMsg(encodeEvent(r))
	}
	target, ok, err := srv.store.ResolveLink(ctx, &r)
	if err != nil {
		return srv.storeError(out, r.Stream, err)
	}
	if !ok {
		return out.SendMsg(encodeResolved(nil, &r, -1))
	}
	return out.SendMsg(encodeResolved(&target, &r, -1))
}
