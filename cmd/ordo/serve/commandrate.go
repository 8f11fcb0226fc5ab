package serve

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	ordonats "github.com/ordo-dev/ordo/nats"
)

// Command counts for the operator's page are kept in a ring of fixed
// buckets in this process, so the page shows throughput and error rate
// without any metrics system; each instance counts what its own workers
// answered.
const (
	rateBucket  = 10 * time.Second
	rateBuckets = 60 // ten minutes
)

// commandRate counts the commands this instance's workers answered, per
// rateBucket, over the last rateBuckets buckets.
type commandRate struct {
	now func() time.Time
	mu  sync.Mutex
	// ring[i] counts bucket start i (in rateBucket units since the Unix
	// epoch) modulo rateBuckets; start tells a stale slot from a live one.
	ring [rateBuckets]rateSlot
}

type rateSlot struct {
	start  int64
	total  int64
	errors map[string]int64 // by error code
}

func newCommandRate(now func() time.Time) *commandRate {
	return &commandRate{now: now}
}

// record counts one answered command; code is its error code, "" when it
// was applied (or was a duplicate).
func (c *commandRate) record(code string) {
	n := c.now().UnixNano() / int64(rateBucket)
	c.mu.Lock()
	defer c.mu.Unlock()
	slot := &c.ring[n%rateBuckets]
	if slot.start != n {
		*slot = rateSlot{start: n}
	}
	slot.total++
	if code != "" {
		if slot.errors == nil {
			slot.errors = map[string]int64{}
		}
		slot.errors[code]++
	}
}

// RateBucket is one interval of GET /v1/commands/rate.
type RateBucket struct {
	Start    time.Time `json:"start"`
	Commands int64     `json:"commands"`
	Errors   int64     `json:"errors"`
}

// RateView is the answer of GET /v1/commands/rate: the commands answered
// per bucket, oldest first, the current (partial) bucket last, and the
// errors of the whole window by code.
type RateView struct {
	BucketSeconds int              `json:"bucket_seconds"`
	Buckets       []RateBucket     `json:"buckets"`
	Commands      int64            `json:"commands"`
	Errors        int64            `json:"errors"`
	ErrorsByCode  map[string]int64 `json:"errors_by_code"`
}

func (c *commandRate) view() RateView {
	n := c.now().UnixNano() / int64(rateBucket)
	v := RateView{BucketSeconds: int(rateBucket / time.Second), Buckets: make([]RateBucket, 0, rateBuckets), ErrorsByCode: map[string]int64{}}
	c.mu.Lock()
	defer c.mu.Unlock()
	for start := n - rateBuckets + 1; start <= n; start++ {
		b := RateBucket{Start: time.Unix(0, start*int64(rateBucket)).UTC()}
		if slot := c.ring[start%rateBuckets]; slot.start == start {
			b.Commands = slot.total
			for code, k := range slot.errors {
				b.Errors += k
				v.ErrorsByCode[code] += k
			}
		}
		v.Commands += b.Commands
		v.Errors += b.Errors
		v.Buckets = append(v.Buckets, b)
	}
	return v
}

func (c *commandRate) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if !onlyParams(w, r, "/v1/commands/rate") {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(c.view())
}

// countingExecutor counts every outcome the workers answer.
type countingExecutor struct {
	ordonats.Executor
	rate *commandRate
}

func (x countingExecutor) Execute(ctx context.Context, cmd ordonats.Command) ordonats.Outcome {
	return x.count(x.Executor.Execute(ctx, cmd))
}

// Prepare implements ordonats.Preparer when the executor counted does.
func (x countingExecutor) Prepare(cmd ordonats.Command) (string, func(context.Context, ordonats.Command) ordonats.Outcome, error) {
	p, ok := x.Executor.(ordonats.Preparer)
	if !ok {
		fp, err := x.Executor.Fingerprint(cmd)
		return fp, x.Execute, err
	}
	fp, execute, err := p.Prepare(cmd)
	if err != nil {
		return "", nil, err
	}
	return fp, func(ctx context.Context, cmd ordonats.Command) ordonats.Outcome { return x.count(execute(ctx, cmd)) }, nil
}

func (x countingExecutor) count(out ordonats.Outcome) ordonats.Outcome {
	code := ""
	if out.Error != nil {
		code = out.Error.Code
	}
	x.rate.record(code)
	return out
}
