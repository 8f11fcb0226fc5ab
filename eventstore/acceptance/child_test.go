package acceptance

import (
	"context"

	"github.com/ordo-dev/ordo/eventstore/esdbserver"
)

// startServerForChild starts the embedded server in a child process and
// returns its URL; the process is killed, never closed.
func startServerForChild(ctx context.Context, dir string) (string, error) {
	srv, err := esdbserver.Start(ctx, esdbserver.Config{DataDir: dir, Listen: "127.0.0.1:0"})
	if err != nil {
		return "", err
	}
	return srv.URL(), nil
}
