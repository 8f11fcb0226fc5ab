package esdbserver

import (
	"context"
	"net"
	"strconv"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/gossip"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/serverfeatures"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ServerVersion is the EventStoreDB version this server answers as. The
// client parses it as N.N.N and enables features (real positions on stream
// reads, caught-up messages) by it.
const ServerVersion = "24.10.0"

// featuresService answers ServerFeatures with exactly the methods served.
type featuresService struct {
	serverfeatures.UnimplementedServerFeaturesServer
}

func (featuresService) GetSupportedMethods(context.Context, *shared.Empty) (*serverfeatures.SupportedMethods, error) {
	const svc = "event_store.client.streams.streams"
	m := func(name string, features ...string) *serverfeatures.SupportedMethod {
		return &serverfeatures.SupportedMethod{MethodName: name, ServiceName: svc, Features: features}
	}
	methods := []*serverfeatures.SupportedMethod{
		m("read", "position", "events"), m("append"), m("delete"), m("tombstone"),
		{MethodName: "read", ServiceName: "event_store.client.gossip.gossip"},
		{MethodName: "getsupportedmethods", ServiceName: "event_store.client.server_features.serverfeatures"},
	}
	// Every persistent subscription method, with the features "stream" and
	// "all" as EventStoreDB lists them: the clients then use gRPC (not the
	// HTTP API) for the management calls, and allow groups on $all.
	for _, name := range []string{"create", "update", "delete", "read", "getinfo", "replayparked", "list", "restartsubsystem"} {
		methods = append(methods, &serverfeatures.SupportedMethod{MethodName: name,
			ServiceName: "event_store.client.persistent_subscriptions.persistentsubscriptions", Features: []string{"stream", "all"}})
	}
	return &serverfeatures.SupportedMethods{EventStoreServerVersion: ServerVersion, Methods: methods}, nil
}

// gossipService describes a one-node cluster whose leader is this server,
// so esdb+discover:// connection strings work too.
type gossipService struct {
	gossip.UnimplementedGossipServer
	srv *Server
	id  uuid.UUID
}

func (g *gossipService) Read(context.Context, *shared.Empty) (*gossip.ClusterInfo, error) {
	host, portStr, err := net.SplitHostPort(g.srv.Addr().String())
	if err != nil {
		return nil, status.Errorf(codes.Internal, "listen address: %v", err)
	}
	port, _ := strconv.Atoi(portStr)
	return &gossip.ClusterInfo{Members: []*gossip.MemberInfo{{
		InstanceId:   idToProto(g.id),
		TimeStamp:    time.Now().UnixNano() / 100,
		State:        gossip.MemberInfo_Leader,
		IsAlive:      true,
		HttpEndPoint: &gossip.EndPoint{Address: host, Port: uint32(port)},
	}}}, nil
}
