package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// childArgsEnv makes this test binary act as the ordo command itself, with
// the JSON-encoded arguments it holds, so tests can run `ordo serve` as a
// real process and kill it (see ordoChild).
const childArgsEnv = "ORDO_TEST_CHILD_ARGS"

// TestMain runs the ordo command when the binary was started as a child,
// and otherwise the tests, removing the benchmarks' shared store at the end.
func TestMain(m *testing.M) {
	if enc := os.Getenv(childArgsEnv); enc != "" {
		os.Exit(runChild(enc))
	}
	code := m.Run()
	if benchStore.dir != "" && !benchStore.keep {
		os.RemoveAll(benchStore.dir)
	}
	os.Exit(code)
}

// runChild runs the ordo command with the arguments enc holds, as main does.
func runChild(enc string) int {
	var args []string
	if err := json.Unmarshal([]byte(enc), &args); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	ctx, stop := signalContext()
	err := run(ctx, args, os.Stdout, os.Stderr)
	stop()
	return exitCode(err, os.Stderr)
}

// ordoChild is `ordo args…` as a child process of this test binary, not
// started yet.
func ordoChild(args ...string) *exec.Cmd {
	enc, _ := json.Marshal(args)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childArgsEnv+"="+string(enc))
	return cmd
}
