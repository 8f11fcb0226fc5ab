// Package containers tests Ordo as users deploy it beyond one machine:
// images built from the repository's Dockerfiles, a 3-node NATS JetStream
// cluster, `ordo eventstore serve`, PostgreSQL and two `ordo serve`
// instances on a private Docker network, with instances, NATS nodes and the
// event store killed, partitioned and restarted under a bounded load.
//
// The tests carry the build tag "containers":
//
//	go test -tags containers ./tests/containers/...
//
// They skip with one line when no Docker engine answers, unless
// ORDO_CONTAINERS_REQUIRED=1 (as .ci/run sets), which makes that a failure.
package containers
