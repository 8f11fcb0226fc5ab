// Package acceptance holds the event store acceptance suite: written once
// against the official EventStoreDB client and run against the embedded
// server, or against any EventStoreDB/KurrentDB given in ORDO_ESDB_URL
// (stream names are unique per run, so a shared server works).
package acceptance

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/ordo-dev/ordo/eventstore/esdbserver"
	"github.com/ordo-dev/ordo/eventstore/esdbtest"
)

// endpoint returns a connection string for the suite: ORDO_ESDB_URL, or a
// fresh embedded server in a temporary directory.
func endpoint(tb testing.TB) string {
	tb.Helper()
	if url := os.Getenv("ORDO_ESDB_URL"); url != "" {
		return url
	}
	return startEmbedded(tb, tb.TempDir(), 0).URL()
}

func startEmbedded(tb testing.TB, dir string, maxAppend int) *esdbserver.Server {
	tb.Helper()
	srv, err := esdbserver.Start(context.Background(), esdbserver.Config{DataDir: dir, Listen: "127.0.0.1:0", MaxAppendSize: maxAppend})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { srv.Close() })
	return srv
}

func client(tb testing.TB) *esdb.Client { return esdbtest.Connect(tb, endpoint(tb)) }

// name is a stream name unique to this run.
func name(prefix string) string { return prefix + "-" + uuid.NewString() }

func ctxT(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	tb.Cleanup(cancel)
	return ctx
}

func event(typ string, data string) esdb.EventData {
	return esdb.EventData{EventID: uuid.New(), EventType: typ, ContentType: esdb.ContentTypeJson, Data: []byte(data)}
}

func events(n int) []esdb.EventData {
	out := make([]esdb.EventData, n)
	for i := range out {
		out[i] = event("Thing", `{"i":`+itoa(i)+`}`)
	}
	return out
}

func itoa(i int) string {
	b := []byte{}
	if i == 0 {
		return "0"
	}
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

// code is the client's error code of err, or -1. It uses errors.As, since
// esdb.FromError misses wrapped errors.
func code(err error) esdb.ErrorCode {
	var e *esdb.Error
	if errors.As(err, &e) {
		return e.Code()
	}
	return -1
}
