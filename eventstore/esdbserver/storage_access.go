package esdbserver

import "github.com/ordo-dev/ordo/eventstore/esdbserver/storage"

// Storage is the server's store, for the in-process adapter
// (eventstore.OpenEmbedded): the service calls it directly while the
// server keeps serving other processes over gRPC. Writes from both go
// through the storage's one writer. The server's Close closes it.
func (s *Server) Storage() *storage.Store { return s.store }
