// Package esdbtest is test support for the official EventStoreDB client:
// a client connected to a server for one test. Only tests import it.
package esdbtest

import (
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
)

// Connect returns a client of the official library for the connection
// string url (esdb://…), with the library's logging off; it is closed at
// cleanup. A malformed url fails the test.
func Connect(tb testing.TB, url string) *esdb.Client {
	tb.Helper()
	cfg, err := esdb.ParseConnectionString(url)
	if err != nil {
		tb.Fatalf("connection string %q: %v", url, err)
	}
	cfg.Logger = esdb.NoopLogging()
	c, err := esdb.NewClient(cfg)
	if err != nil {
		tb.Fatalf("connect to %s: %v", url, err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}
