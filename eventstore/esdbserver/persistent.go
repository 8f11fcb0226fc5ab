package esdbserver

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/persistent"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	ps "github.com/ordo-dev/ordo/eventstore/esdbserver/persistent"
	"github.com/ordo-dev/ordo/eventstore/esdbserver/storage"
)

// persistentService maps the PersistentSubscriptions gRPC service onto the
// persistent package, with EventStoreDB's statuses and trailers.
type persistentService struct {
	persistent.UnimplementedPersistentSubscriptionsServer
	srv *Server
	mgr *ps.Manager
}

// Create defines a subscription group on a stream or on $all.
func (p *persistentService) Create(ctx context.Context, req *persistent.CreateReq) (*persistent.CreateResp, error) {
	o := req.GetOptions()
	if o == nil || o.GetSettings() == nil {
		return nil, status.Error(codes.InvalidArgument, "create request without options or settings")
	}
	spec, err := createSpec(o)
	if err != nil {
		return nil, err
	}
	if err := p.mgr.Create(ctx, spec); err != nil {
		return nil, p.statusOf(ctx, spec.Source.Stream, spec.Group, err)
	}
	return &persistent.CreateResp{}, nil
}

// Update changes a group's settings and start.
func (p *persistentService) Update(ctx context.Context, req *persistent.UpdateReq) (*persistent.UpdateResp, error) {
	o := req.GetOptions()
	if o == nil || o.GetSettings() == nil {
		return nil, status.Error(codes.InvalidArgument, "update request without options or settings")
	}
	spec, err := updateSpec(o)
	if err != nil {
		return nil, err
	}
	if err := p.mgr.Update(ctx, spec); err != nil {
		return nil, p.statusOf(ctx, spec.Source.Stream, spec.Group, err)
	}
	return &persistent.UpdateResp{}, nil
}

// Delete removes a group.
func (p *persistentService) Delete(ctx context.Context, req *persistent.DeleteReq) (*persistent.DeleteResp, error) {
	o := req.GetOptions()
	stream, ok := sourceStream(o)
	if !ok {
		return nil, status.Error(codes.InvalidArgument, "delete request names neither a stream nor $all")
	}
	if err := p.mgr.Delete(ctx, stream, o.GetGroupName()); err != nil {
		return nil, p.statusOf(ctx, stream, o.GetGroupName(), err)
	}
	return &persistent.DeleteResp{}, nil
}

// streamOrAll is the source a delete or read request names: a stream, or
// $all.
type streamOrAll interface {
	GetStreamIdentifier() *shared.StreamIdentifier
	GetAll() *shared.Empty
}

// sourceStream is the stream o names, ps.AllStream for $all; ok is false
// when it names neither.
func sourceStream(o streamOrAll) (stream string, ok bool) {
	if id := o.GetStreamIdentifier(); id != nil {
		return string(id.GetStreamName()), true
	}
	return ps.AllStream, o.GetAll() != nil
}

// Read connects a consumer: after the confirmation only events go out
// (anything else makes the Go client panic, hazard H8), and acks and nacks
// come in on the same call until the client leaves or the server drops it.
func (p *persistentService) Read(call persistent.PersistentSubscriptions_ReadServer) error {
	ctx := call.Context()
	first, err := call.Recv()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return status.Error(codes.InvalidArgument, "persistent subscription read without options")
		}
		return err
	}
	o := first.GetOptions()
	if o == nil {
		return status.Error(codes.InvalidArgument, "the first message of a persistent subscription read must carry options")
	}
	stream, ok := sourceStream(o)
	if !ok {
		return status.Error(codes.InvalidArgument, "persistent subscription read names neither a stream nor $all")
	}
	c, err := p.mgr.Connect(stream, o.GetGroupName(), int(o.GetBufferSize()), connectionName(ctx), peerAddr(ctx))
	if err != nil {
		return p.statusOf(ctx, stream, o.GetGroupName(), err)
	}
	defer c.Close()
	confirm := &persistent.ReadResp{Content: &persistent.ReadResp_SubscriptionConfirmation_{
		SubscriptionConfirmation: &persistent.ReadResp_SubscriptionConfirmation{SubscriptionId: c.SubscriptionID()}}}
	if err := call.Send(confirm); err != nil {
		return err
	}
	go receiveAcks(call, c)
	for {
		d, err := c.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return status.FromContextError(ctx.Err()).Err()
			}
			return p.statusOf(ctx, stream, o.GetGroupName(), err)
		}
		retry := int32(min(d.RetryCount, math.MaxInt32))
		if err := call.SendMsg(encodeResolved(d.Event, d.Link, retry)); err != nil {
			return err
		}
	}
}

// receiveAcks hands the client's acks and nacks to the consumer until the
// client stops sending. The subscription goes on until it is cancelled.
func receiveAcks(call persistent.PersistentSubscriptions_ReadServer, c *ps.Consumer) {
	for {
		req, err := call.Recv()
		if err != nil {
			return
		}
		switch m := req.GetContent().(type) {
		case *persistent.ReadReq_Ack_:
			c.Ack(eventIDs(m.Ack.GetIds()))
		case *persistent.ReadReq_Nack_:
			c.Nack(ps.NackAction(m.Nack.GetAction()), m.Nack.GetReason(), eventIDs(m.Nack.GetIds()))
		}
	}
}

func eventIDs(ids []*shared.UUID) [][16]byte {
	out := make([][16]byte, 0, len(ids))
	for _, u := range ids {
		var id [16]byte
		if s := u.GetStructured(); s != nil {
			binary.BigEndian.PutUint64(id[:8], uint64(s.GetMostSignificantBits()))
			binary.BigEndian.PutUint64(id[8:], uint64(s.GetLeastSignificantBits()))
		} else if parsed, err := uuid.Parse(u.GetString_()); err == nil {
			id = parsed
		} else {
			continue
		}
		out = append(out, id)
	}
	return out
}

// GetInfo describes one group.
func (p *persistentService) GetInfo(ctx context.Context, req *persistent.GetInfoReq) (*persistent.GetInfoResp, error) {
	o := req.GetOptions()
	stream, _ := sourceStream(o) // $all unless a stream is named
	info, err := p.mgr.Info(stream, o.GetGroupName())
	if err != nil {
		return nil, p.statusOf(ctx, stream, o.GetGroupName(), err)
	}
	return &persistent.GetInfoResp{SubscriptionInfo: subscriptionInfo(info)}, nil
}

// List describes all groups, or those of one stream or of $all.
func (p *persistentService) List(ctx context.Context, req *persistent.ListReq) (*persistent.ListResp, error) {
	stream := ""
	if f := req.GetOptions().GetListForStream(); f != nil {
		stream = ps.AllStream
		if s := f.GetStream(); s != nil {
			stream = string(s.GetStreamName())
		}
	}
	infos, err := p.mgr.List(stream)
	if err != nil {
		return nil, p.statusOf(ctx, stream, "", err)
	}
	resp := &persistent.ListResp{}
	for _, in := range infos {
		resp.Subscriptions = append(resp.Subscriptions, subscriptionInfo(in))
	}
	return resp, nil
}

// ReplayParked sends a group's parked events again.
func (p *persistentService) ReplayParked(ctx context.Context, req *persistent.ReplayParkedReq) (*persistent.ReplayParkedResp, error) {
	o := req.GetOptions()
	stream, _ := sourceStream(o) // $all unless a stream is named
	var stopAt *int64
	if s, ok := o.GetStopAtOption().(*persistent.ReplayParkedReq_Options_StopAt); ok {
		stopAt = &s.StopAt
	}
	if err := p.mgr.ReplayParked(stream, o.GetGroupName(), stopAt); err != nil {
		return nil, p.statusOf(ctx, stream, o.GetGroupName(), err)
	}
	return &persistent.ReplayParkedResp{}, nil
}

// RestartSubsystem stops every group and starts them again.
func (p *persistentService) RestartSubsystem(ctx context.Context, _ *shared.Empty) (*shared.Empty, error) {
	if err := p.mgr.Restart(ctx); err != nil {
		return nil, p.statusOf(ctx, "", "", err)
	}
	return &shared.Empty{}, nil
}

// statusOf maps a manager error to EventStoreDB's status and trailers
// (RpcExceptions): the clients recognise these cases by their codes.
func (p *persistentService) statusOf(ctx context.Context, stream, group string, err error) error {
	ts := trailerOf(ctx)
	pairs := func(exception string, kv ...string) []string {
		return append([]string{"exception", exception, "stream-name", stream, "group-name", group}, kv...)
	}
	var inv *ps.InvalidError
	switch {
	case errors.Is(err, ps.ErrExists):
		return withTrailer(ts, status.Errorf(codes.AlreadyExists, "Subscription group %s on stream %s exists.", group, stream),
			pairs("persistent-subscription-exists")...)
	case errors.Is(err, ps.ErrNotFound):
		return withTrailer(ts, status.Errorf(codes.NotFound, "Subscription group %s on stream %s does not exist.", group, stream),
			pairs("persistent-subscription-does-not-exist")...)
	case errors.Is(err, ps.ErrMaxSubscribers):
		return withTrailer(ts, status.Errorf(codes.FailedPrecondition, "Maximum subscriptions reached for subscription group %s on stream %s.", group, stream),
			pairs("maximum-subscribers-reached")...)
	case errors.Is(err, ps.ErrDropped):
		return withTrailer(ts, status.Errorf(codes.Canceled, "Subscription group %s on stream %s was dropped: %v", group, stream, err),
			pairs("persistent-subscription-dropped")...)
	case errors.As(err, &inv):
		return withTrailer(ts, status.Errorf(codes.Internal, "Subscription group %s on stream %s failed: '%s'", group, stream, inv.Reason),
			pairs("persistent-subscription-failed", "reason", inv.Reason)...)
	}
	return p.srv.storeError(ts, stream, err)
}

// trailerOf sets trailers on a unary call, or on a stream's call (the
// server transport stream is in the context of both).
func trailerOf(ctx context.Context) trailerSetter { return unaryTrailer{ctx} }

func createSpec(o *persistent.CreateReq_Options) (ps.Spec, error) {
	st := o.GetSettings()
	strategy := st.GetConsumerStrategy()
	if strategy == "" {
		strategy = st.GetNamedConsumerStrategy().String()
	}
	spec := ps.Spec{Group: o.GetGroupName(), Settings: settings(settingsFields{
		resolve: st.GetResolveLinks(), extra: st.GetExtraStatistics(), maxRetry: st.GetMaxRetryCount(),
		minCp: st.GetMinCheckpointCount(), maxCp: st.GetMaxCheckpointCount(), maxSubs: st.GetMaxSubscriberCount(),
		live: st.GetLiveBufferSize(), batch: st.GetReadBatchSize(), history: st.GetHistoryBufferSize(), strategy: strategy,
		timeoutMs: st.GetMessageTimeoutMs(), timeoutTicks: st.GetMessageTimeoutTicks(),
		cpAfterMs: st.GetCheckpointAfterMs(), cpAfterTicks: st.GetCheckpointAfterTicks()})}
	switch so := o.GetStreamOption().(type) {
	case *persistent.CreateReq_Options_All:
		spec.Source.Stream = ps.AllStream
		start, err := allStart(so.All.GetPosition().GetCommitPosition(), so.All.GetPosition().GetPreparePosition(),
			so.All.GetStart() != nil, so.All.GetEnd() != nil)
		if err != nil {
			return spec, err
		}
		spec.Start = start
		if f := so.All.GetFilter(); f != nil {
			spec.Source.Filter = createFilter(f)
		}
	case *persistent.CreateReq_Options_Stream:
		spec.Source.Stream = string(so.Stream.GetStreamIdentifier().GetStreamName())
		_, isRev := so.Stream.GetRevisionOption().(*persistent.CreateReq_StreamOptions_Revision)
		start, err := streamStartFrom(so.Stream.GetStart() != nil, so.Stream.GetEnd() != nil, isRev, so.Stream.GetRevision())
		if err != nil {
			return spec, err
		}
		spec.Start = start
	default: // before 21.x: the deprecated stream identifier and revision
		spec.Source.Stream = string(o.GetStreamIdentifier().GetStreamName())
		start, err := streamStartFrom(false, false, true, st.GetRevision())
		if err != nil {
			return spec, err
		}
		spec.Start = start
	}
	return spec, nil
}

func updateSpec(o *persistent.UpdateReq_Options) (ps.Spec, error) {
	st := o.GetSettings()
	spec := ps.Spec{Group: o.GetGroupName(), Settings: settings(settingsFields{
		resolve: st.GetResolveLinks(), extra: st.GetExtraStatistics(), maxRetry: st.GetMaxRetryCount(),
		minCp: st.GetMinCheckpointCount(), maxCp: st.GetMaxCheckpointCount(), maxSubs: st.GetMaxSubscriberCount(),
		live: st.GetLiveBufferSize(), batch: st.GetReadBatchSize(), history: st.GetHistoryBufferSize(),
		strategy:  st.GetNamedConsumerStrategy().String(),
		timeoutMs: st.GetMessageTimeoutMs(), timeoutTicks: st.GetMessageTimeoutTicks(),
		cpAfterMs: st.GetCheckpointAfterMs(), cpAfterTicks: st.GetCheckpointAfterTicks()})}
	switch so := o.GetStreamOption().(type) {
	case *persistent.UpdateReq_Options_All:
		spec.Source.Stream = ps.AllStream
		start, err := allStart(so.All.GetPosition().GetCommitPosition(), so.All.GetPosition().GetPreparePosition(),
			so.All.GetStart() != nil, so.All.GetEnd() != nil)
		if err != nil {
			return spec, err
		}
		spec.Start = start
	case *persistent.UpdateReq_Options_Stream:
		spec.Source.Stream = string(so.Stream.GetStreamIdentifier().GetStreamName())
		_, isRev := so.Stream.GetRevisionOption().(*persistent.UpdateReq_StreamOptions_Revision)
		start, err := streamStartFrom(so.Stream.GetStart() != nil, so.Stream.GetEnd() != nil, isRev, so.Stream.GetRevision())
		if err != nil {
			return spec, err
		}
		spec.Start = start
	default:
		spec.Source.Stream = string(o.GetStreamIdentifier().GetStreamName())
		start, err := streamStartFrom(false, false, true, st.GetRevision())
		if err != nil {
			return spec, err
		}
		spec.Start = start
	}
	return spec, nil
}

// settingsFields are the settings both Create and Update carry.
type settingsFields struct {
	resolve, extra                               bool
	maxRetry, minCp, maxCp, maxSubs, live, batch int32
	history                                      int32
	strategy                                     string
	timeoutMs, cpAfterMs                         int32
	timeoutTicks, cpAfterTicks                   int64
}

// settings converts them; durations come in milliseconds or, from older
// clients, in 100-ns ticks.
func settings(f settingsFields) ps.Settings {
	dur := func(ms int32, ticks int64) time.Duration {
		if ticks != 0 {
			return time.Duration(ticks) * 100
		}
		return time.Duration(ms) * time.Millisecond
	}
	return ps.Settings{
		ResolveLinkTos: f.resolve, ExtraStatistics: f.extra, MaxRetryCount: int(f.maxRetry),
		MinCheckpointCount: int(f.minCp), MaxCheckpointCount: int(f.maxCp), MaxSubscriberCount: int(f.maxSubs),
		LiveBufferSize: int(f.live), ReadBatchSize: int(f.batch), HistoryBufferSize: int(f.history),
		ConsumerStrategy: f.strategy,
		MessageTimeout:   dur(f.timeoutMs, f.timeoutTicks), CheckpointAfter: dur(f.cpAfterMs, f.cpAfterTicks),
	}
}

// streamStartFrom reads a stream start; 2^64-1 is EventStoreDB's encoding
// of the end, other revisions beyond 2^63-1 are refused as it refuses them.
func streamStartFrom(start, end, isRev bool, rev uint64) (ps.StartFrom, error) {
	switch {
	case end || (isRev && rev == math.MaxUint64):
		return ps.StartFrom{End: true}, nil
	case start || !isRev:
		return ps.StartFrom{}, nil
	case rev > math.MaxInt64:
		return ps.StartFrom{}, status.Errorf(codes.InvalidArgument, "start revision %d is beyond the largest stream revision", rev)
	}
	return ps.StartFrom{At: rev}, nil
}

func allStart(commit, prepare uint64, start, end bool) (ps.StartFrom, error) {
	switch {
	case end || (commit == math.MaxUint64 && prepare == math.MaxUint64):
		return ps.StartFrom{End: true}, nil
	case start:
		return ps.StartFrom{}, nil
	case commit > math.MaxInt64 || prepare > math.MaxInt64:
		return ps.StartFrom{}, status.Errorf(codes.InvalidArgument, "start position C:%d/P:%d is beyond the largest position", commit, prepare)
	}
	return ps.StartFrom{At: commit, Prepare: prepare}, nil
}

func createFilter(f *persistent.CreateReq_AllOptions_FilterOptions) storage.Filter {
	var out storage.Filter
	if e := f.GetStreamIdentifier(); e != nil {
		if e.GetRegex() != "" {
			out.StreamRegex = e.GetRegex()
		} else {
			out.StreamPrefixes = e.GetPrefix()
		}
	} else if e := f.GetEventType(); e != nil {
		if e.GetRegex() != "" {
			out.TypeRegex = e.GetRegex()
		} else {
			out.TypePrefixes = e.GetPrefix()
		}
	}
	return out
}

func subscriptionInfo(in ps.Info) *persistent.SubscriptionInfo {
	st := in.Settings
	out := &persistent.SubscriptionInfo{
		EventSource: in.EventSource, GroupName: in.GroupName, Status: in.Status,
		AveragePerSecond: clamp32(in.AveragePerSecond), TotalItems: in.TotalItems,
		CountSinceLastMeasurement:     in.CountSinceLastMeasurement,
		LastCheckpointedEventPosition: in.LastCheckpointedEventPosition, LastKnownEventPosition: in.LastKnownEventPosition,
		ResolveLinkTos: st.ResolveLinkTos, StartFrom: in.StartFrom,
		MessageTimeoutMilliseconds: clamp32(st.MessageTimeout.Milliseconds()), ExtraStatistics: st.ExtraStatistics,
		MaxRetryCount: int32(st.MaxRetryCount), LiveBufferSize: int32(st.LiveBufferSize), BufferSize: int32(st.HistoryBufferSize),
		ReadBatchSize: int32(st.ReadBatchSize), CheckPointAfterMilliseconds: clamp32(st.CheckpointAfter.Milliseconds()),
		MinCheckPointCount: int32(st.MinCheckpointCount), MaxCheckPointCount: int32(st.MaxCheckpointCount),
		ReadBufferCount: int32(in.ReadBufferCount), LiveBufferCount: in.LiveBufferCount, RetryBufferCount: int32(in.RetryBufferCount),
		TotalInFlightMessages: int32(in.TotalInFlightMessages), OutstandingMessagesCount: int32(in.OutstandingMessagesCount),
		NamedConsumerStrategy: st.ConsumerStrategy, MaxSubscriberCount: int32(st.MaxSubscriberCount),
		ParkedMessageCount: in.ParkedMessageCount,
	}
	for _, c := range in.Connections {
		ci := &persistent.SubscriptionInfo_ConnectionInfo{From: c.From, Username: c.Username,
			AverageItemsPerSecond: clamp32(c.AverageItemsPerSecond), TotalItems: c.TotalItems,
			CountSinceLastMeasurement: c.CountSinceLastMeasurement, AvailableSlots: int32(c.AvailableSlots),
			InFlightMessages: int32(c.InFlightMessages), ConnectionName: c.ConnectionName}
		for _, m := range c.ExtraStatistics {
			ci.ObservedMeasurements = append(ci.ObservedMeasurements, &persistent.SubscriptionInfo_Measurement{Key: m.Key, Value: m.Value})
		}
		out.Connections = append(out.Connections, ci)
	}
	return out
}

func clamp32(n int64) int32 { return int32(max(min(n, math.MaxInt32), math.MinInt32)) }

// connectionName is the client's "connection-name" header, as EventStoreDB
// reports it.
func connectionName(ctx context.Context) string {
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get("connection-name"); len(v) > 0 {
			return v[0]
		}
	}
	return "<unknown>"
}

func peerAddr(ctx context.Context) string {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return p.Addr.String()
	}
	return ""
}
