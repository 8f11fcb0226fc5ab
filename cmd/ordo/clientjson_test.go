package main

import (
	"encoding/json"
	"net"
	"strings"
	"testing"
)

// TestClientVerbsReportConnectionErrorsAsJSON: with --json, a service that
// cannot be reached is an {"error": …} object with a stable code on stdout
// and exit status 1, like any other failure.
func TestClientVerbsReportConnectionErrorsAsJSON(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "nats://" + lis.Addr().String() // nothing listens there once closed
	lis.Close()
	const order = "0b6f7c1e-3f4a-4a53-9a7e-2f1f5d0c9b1a"
	for _, args := range [][]string{
		{"order", "get", order},
		{"order", "deliver", order},
		{"order", "place", "--customer", "c-1", "--line", "sku-1:1:100", "--currency", "EUR"},
		{"stock", "get", "sku-1"},
		{"stock", "add", "sku-1", "5"},
	} {
		t.Run(strings.Join(args[:2], " "), func(t *testing.T) {
			var out, errOut strings.Builder
			err := run(t.Context(), append(args, "--nats-url", url, "--json"), &out, &errOut)
			if code := exitCode(err, &errOut); code != 1 {
				t.Errorf("exit status %d, want 1 (err %v)", code, err)
			}
			var reply struct {
				Error *struct{ Code, Message string } `json:"error"`
			}
			if jerr := json.Unmarshal([]byte(out.String()), &reply); jerr != nil || reply.Error == nil {
				t.Fatalf("stdout %q (stderr %q) is not a JSON error: %v", out.String(), errOut.String(), jerr)
			}
			if reply.Error.Code != "unavailable" || !strings.Contains(reply.Error.Message, "connect to NATS") {
				t.Fatalf("error %+v, want code unavailable and a message naming the connection", reply.Error)
			}
		})
	}
}
