package tests

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ordo-dev/ordo/domain"
	ordonats "github.com/ordo-dev/ordo/nats"
)

// chromium finds a headless-capable Chromium, or skips the test saying
// how to get one (CI installs Debian's chromium: .ci/run).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no Chromium installed (apt-get install chromium): the operator page's browser test is skipped")
	return ""
}

// browser starts a headless Chromium for the test and collects every
// console error, uncaught exception and failed resource load it reports.
func browser(t *testing.T, path string) (context.Context, func() []string) {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.WindowSize(1400, 1000))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	var mu sync.Mutex
	var problems []string
	err := chromedp.Listen(ctx, func(ev any) {
		var p string
		switch e := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError || e.Type == runtime.ConsoleAPICalledTypeAssert {
				var args []string
				for _, a := range e.Args {
					args = append(args, string(a.Value)+a.Description)
				}
				p = "console." + string(e.Type) + ": " + strings.Join(args, " ")
			}
		case *runtime.EventExceptionThrown:
			p = fmt.Sprintf("exception: %s at %s:%d", e.ExceptionDetails.Text, e.ExceptionDetails.URL, e.ExceptionDetails.LineNumber)
			if x := e.ExceptionDetails.Exception; x != nil {
				p += ": " + x.Description
			}
		case *cdplog.EventEntryAdded:
			if e.Entry.Level == cdplog.EntryLevelError {
				p = "log: " + e.Entry.Text + " " + e.Entry.URL
			}
		}
		if p != "" {
			mu.Lock()
			problems = append(problems, p)
			mu.Unlock()
		}
	})
	// Listen started the browser, outside any step's timeout.
	if err != nil {
		t.Fatalf("start Chromium at %s: %v", path, err)
	}
	return ctx, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(problems)
	}
}

// pageOrders are orders in the states the operator's page tells apart.
type pageOrders struct {
	placed, awaiting, paid, shipped, refunding, completed, cancelled string
	last                                                             uint64 // the newest event's position
}

func makePageOrders(t *testing.T, s *system) pageOrders {
	t.Helper()
	ctx := ctxT(t)
	var o pageOrders
	note := func(out ordonats.Outcome) { o.last = max(o.last, out.Position) }
	place := func(reserve bool) string {
		id := uuid.NewString()
		note(must(t)(s.client.PlaceOrder(ctx, placeCmd(id))))
		if reserve {
			note(must(t)(s.client.MarkStockReserved(ctx, domain.MarkStockReserved{Order: id})))
		}
		return id
	}
	pay := func(id string) {
		note(must(t)(s.client.ConfirmPayment(ctx, domain.ConfirmPayment{Order: id, PaymentID: "pay-" + id[:8], Amount: total})))
	}
	ship := func(id string) {
		note(must(t)(s.client.ShipOrder(ctx, domain.ShipOrder{Order: id, Carrier: "dhl", TrackingNumber: "JD-" + id[:8]})))
	}
	deliver := func(id string) { note(must(t)(s.client.ConfirmDelivery(ctx, domain.ConfirmDelivery{Order: id}))) }

	o.placed = place(false)
	o.awaiting = place(true)
	o.paid = place(true)
	pay(o.paid)
	o.shipped = place(true)
	pay(o.shipped)
	ship(o.shipped)
	o.refunding = place(true)
	pay(o.refunding)
	ship(o.refunding)
	deliver(o.refunding)
	note(must(t)(s.client.RequestRefund(ctx, domain.RequestRefund{Order: o.refunding, RefundID: "rf-1", Amount: 1250, Reason: "one item broken"})))
	o.completed = place(true)
	pay(o.completed)
	ship(o.completed)
	deliver(o.completed)
	note(must(t)(s.client.CompleteOrder(ctx, domain.CompleteOrder{Order: o.completed})))
	o.cancelled = place(true)
	note(must(t)(s.client.CancelOrder(ctx, domain.CancelOrder{Order: o.cancelled, Reason: "customer changed their mind"})))
	// One refusal for the error rate: an order awaiting payment cannot ship.
	if _, err := s.client.ShipOrder(ctx, domain.ShipOrder{Order: o.awaiting, Carrier: "dhl", TrackingNumber: "X"}); !errors.Is(err, domain.ErrIllegalTransition) {
		t.Fatalf("shipping an order awaiting payment: %v, want illegal_transition", err)
	}
	return o
}

// deadLetterOne sends a command that does not decode and waits for its
// refusal, so the page has a dead letter to show.
func deadLetterOne(t *testing.T, s *system, commandID string) {
	t.Helper()
	ctx := ctxT(t)
	js, err := jetstream.New(s.nc)
	if err != nil {
		t.Fatal(err)
	}
	inbox := s.nc.NewInbox()
	sub, err := s.nc.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	m := natsgo.NewMsg(ordonats.CommandSubject(uuid.NewString(), domain.CmdPlaceOrder))
	m.Data = []byte(`{"order_id":`)
	m.Header.Set(ordonats.HeaderMsgID, uuid.NewString())
	m.Header.Set(ordonats.HeaderCommandID, commandID)
	m.Header.Set(ordonats.HeaderReplyTo, inbox)
	if _, err := js.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
	if _, err := sub.NextMsg(30 * time.Second); err != nil {
		t.Fatalf("no reply to the malformed command: %v", err)
	}
}

// stuckView is what the overview shows, read from the page's DOM.
type stuckView struct {
	Awaiting  []string `json:"awaiting"`
	Paid      []string `json:"paid"`
	Shipped   []string `json:"shipped"`
	Refunds   []string `json:"refunds"`
	Counts    string   `json:"counts"`
	Codes     string   `json:"codes"`
	Dead      string   `json:"dead"`
	Lag       string   `json:"lag"`
	SagaShown bool     `json:"saga"`
	Problem   string   `json:"problem"`
}

const stuckScript = `(() => {
  const ids = (id) => [...document.querySelectorAll("#" + id + " tbody tr[data-order-id]")].map((r) => r.dataset.orderId).sort();
  const text = (sel) => { const e = document.querySelector(sel); return e ? e.textContent : ""; };
  return {
    awaiting: ids("stuck-awaiting_payment"), paid: ids("stuck-paid"), shipped: ids("stuck-shipped"), refunds: ids("stuck-refund_requested"),
    counts: [...document.querySelectorAll("#counts-orders tr[data-status]")].map((r) => r.dataset.status + "=" + r.querySelector("td.num").textContent).join(" "),
    codes: text("#rate-codes"), dead: text("#deadletters tbody"), lag: text("#projection-lag"),
    saga: !!document.querySelector("#saga"), problem: document.querySelector("#problem").hidden ? "" : text("#problem"),
  };
})()`

// orderView is what the order page shows.
type orderView struct {
	State    string   `json:"state"`
	Current  []string `json:"current"`
	Timeline []string `json:"timeline"`
	Payments int      `json:"payments"`
	Ships    int      `json:"shipments"`
	Refunds  []string `json:"refunds"`
	Problem  string   `json:"problem"`
}

const orderScript = `(() => ({
  state: document.querySelector("#order-state").dataset.state || "",
  current: [...document.querySelectorAll("#lifecycle g.state.current")].map((g) => g.dataset.state),
  timeline: [...document.querySelectorAll("#timeline tbody tr[data-type]")].map((r) => r.dataset.type),
  payments: document.querySelectorAll("#payments tbody tr td.mono").length,
  shipments: document.querySelectorAll("#shipments tbody tr td.mono").length,
  refunds: [...document.querySelectorAll("#refunds tbody tr[data-refund-id]")].map((r) => r.dataset.refundId + ":" + r.dataset.status),
  problem: document.querySelector("#problem").hidden ? "" : document.querySelector("#problem").textContent,
}))()`

// TestOperatorPage drives the operator's page in headless Chromium against
// a running service with orders in every state: the stuck-order lists hold
// exactly the stuck orders, the counts, command errors and dead letters
// show, an order opened from its link shows its state on the lifecycle
// and its timeline event by event, and the browser reports no error. It
// saves a screenshot of each page (kept with go test -artifacts).
func TestOperatorPage(t *testing.T) {
	path := chromium(t)
	s := start(t, config(t, t.TempDir()))
	orders := makePageOrders(t, s)
	deadLetterOne(t, s, "page-bad-json")
	base := "http://" + s.svc.HTTPAddr()
	// The page reads the read models; let them catch up first, so every
	// order it links to is there.
	waitReadModels(t, base, orders.last)
	ctx, consoleProblems := browser(t, path)
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()

	// Thresholds of one second: every order waiting in a state is stuck
	// after a second, so the lists must hold exactly these.
	want := stuckView{Awaiting: []string{orders.awaiting}, Paid: []string{orders.paid}, Shipped: []string{orders.shipped}, Refunds: []string{orders.refunding},
		Counts: "placed=1 awaiting_payment=1 paid=1 shipped=1 delivered=1 completed=1 cancelled=1 refunded=0", Codes: "illegal_transition 1"}
	// The dead letters hold command bodies: the page shows none until the
	// operator enters the admin token, then shows them.
	token := strings.TrimPrefix(s.adminHeader(t).Get("Authorization"), "Bearer ")
	err := chromedp.Do(ctx, chromedp.Navigate(base+"/?pay=1s&t=1s"),
		chromedp.WaitVisible(chromedp.CSS("#admin-token")),
		chromedp.Poll[chromedp.Void](`document.querySelector("#updated").textContent !== ""`,
			chromedp.WithPollingTimeout(30*time.Second), chromedp.WithPollingInterval(250*time.Millisecond)))
	before, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("#deadletters tbody").textContent`))
	if err != nil || strings.Contains(before, "page-bad-json") || !strings.Contains(before, "admin token") {
		t.Fatalf("before the admin token: the dead letters show %q (%v); want a request for the token and no dead letter", before, err)
	}
	err = chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS("#admin-token"), token), chromedp.Click(chromedp.CSS("#admin-token-form button")),
		chromedp.Poll[chromedp.Void](fmt.Sprintf(`(() => { const v = %s; return v.awaiting.length === 1 && v.paid.length === 1 && v.shipped.length === 1 && v.refunds.length === 1 && v.codes !== "" && v.dead.includes("page-bad-json"); })()`, stuckScript),
			chromedp.WithPollingTimeout(90*time.Second), chromedp.WithPollingInterval(250*time.Millisecond)))
	got, _ := chromedp.Run(ctx, chromedp.Evaluate[stuckView](stuckScript))
	if err != nil {
		t.Fatalf("the overview did not show the stuck orders: %v; it shows %+v; want %+v", err, got, want)
	}
	for _, l := range []*[]string{&want.Awaiting, &want.Paid, &want.Shipped, &want.Refunds} {
		slices.Sort(*l)
	}
	if !slices.Equal(got.Awaiting, want.Awaiting) || !slices.Equal(got.Paid, want.Paid) || !slices.Equal(got.Shipped, want.Shipped) || !slices.Equal(got.Refunds, want.Refunds) {
		t.Errorf("stuck orders: got %+v, want awaiting %v paid %v shipped %v refunds %v (placed %s, completed %s, cancelled %s are not stuck)",
			got, want.Awaiting, want.Paid, want.Shipped, want.Refunds, orders.placed, orders.completed, orders.cancelled)
	}
	if got.Counts != want.Counts || got.Codes != want.Codes {
		t.Errorf("counts %q, command errors %q; want %q, %q", got.Counts, got.Codes, want.Counts, want.Codes)
	}
	if tokenShown, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`!document.querySelector("#admin-token-form").hidden || location.href.includes(`+fmt.Sprintf("%q", token)+`)`)); tokenShown {
		t.Error("with the admin token entered, its form is still shown or the token is in the URL")
	}
	if !strings.Contains(got.Dead, "invalid_command") || !strings.Contains(got.Lag, "positions") || !got.SagaShown || got.Problem != "" {
		t.Errorf("dead letters %q, projection lag %q, saga shown %v, problem %q", got.Dead, got.Lag, got.SagaShown, got.Problem)
	}
	screenshot(t, ctx, "operator-page.png")

	// Open the order with the refund from its link in the stuck list.
	wantTimeline := []string{domain.EvtOrderPlaced, domain.EvtStockReserved, domain.EvtPaymentSucceeded, domain.EvtOrderShipped, domain.EvtOrderDelivered, domain.EvtRefundRequested}
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`#stuck-refund_requested a[href="#/orders/%s"]`, orders.refunding))),
		chromedp.Poll[chromedp.Void](fmt.Sprintf(`(() => { const v = %s; return v.timeline.length === %d && v.refunds.length === 1; })()`, orderScript, len(wantTimeline)),
			chromedp.WithPollingTimeout(60*time.Second), chromedp.WithPollingInterval(250*time.Millisecond)))
	order, _ := chromedp.Run(ctx, chromedp.Evaluate[orderView](orderScript))
	if err != nil {
		t.Fatalf("the order page did not show the order: %v; it shows %+v", err, order)
	}
	if order.State != "delivered" || !slices.Equal(order.Current, []string{"delivered"}) || !slices.Equal(order.Timeline, wantTimeline) ||
		order.Payments != 1 || order.Ships != 2 || !slices.Equal(order.Refunds, []string{"rf-1:requested"}) || order.Problem != "" {
		t.Errorf("order page: got %+v; want state delivered (highlighted), timeline %v, 1 payment, 2 shipment events, refund rf-1 requested", order, wantTimeline)
	}
	screenshot(t, ctx, "operator-order.png")
	// The page refreshes by itself (and a refresh must raise no error
	// either): the time of its last update changes.
	updated, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("#updated").textContent`))
	if err := chromedp.Do(ctx, chromedp.Poll[chromedp.Void](fmt.Sprintf(`document.querySelector("#updated").textContent !== %q`, updated),
		chromedp.WithPollingTimeout(30*time.Second), chromedp.WithPollingInterval(250*time.Millisecond))); err != nil {
		t.Fatalf("the order page did not refresh itself (last update %q): %v", updated, err)
	}
	if p := consoleProblems(); len(p) > 0 {
		t.Errorf("the browser reported errors:\n%s", strings.Join(p, "\n"))
	}
}

// waitReadModels waits until the read models have applied position pos.
func waitReadModels(t *testing.T, base string, pos uint64) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(fmt.Sprintf("%s/v1/stats?min_position=%d", base, pos))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the read models did not reach position %d: %v", pos, err)
		}
		time.Sleep(50 * time.Millisecond) // a pause between attempts; each waits up to --read-wait itself
	}
}

// screenshot saves a PNG of the whole page in the test's artifact
// directory (go test -artifacts -outputdir DIR keeps it).
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	// chromedp's FullScreenshot stops at the viewport; clip to the whole
	// document instead.
	size, err := chromedp.Run(ctx, chromedp.Evaluate[[2]float64](`[document.documentElement.scrollWidth, document.documentElement.scrollHeight]`))
	if err != nil {
		t.Fatalf("screenshot %s: page size: %v", name, err)
	}
	png, err := chromedp.Run(ctx, func(ctx context.Context, tg *chromedp.Target) ([]byte, error) {
		r, err := cdp.Call(ctx, tg, page.CaptureScreenshot, page.CaptureScreenshotParams{
			Format: page.CaptureScreenshotFormatPng, CaptureBeyondViewport: &[]bool{true}[0],
			Clip: &page.Viewport{Width: size[0], Height: size[1], Scale: 1}})
		if err != nil {
			return nil, err
		}
		return r.Data, nil
	})
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	p := filepath.Join(t.ArtifactDir(), name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", p)
}
