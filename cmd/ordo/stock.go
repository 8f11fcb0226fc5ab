package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/ordo-dev/ordo/cmd/flagset"
	"github.com/ordo-dev/ordo/domain"
	ordonats "github.com/ordo-dev/ordo/nats"
)

// runStock is `ordo stock`: add units to a SKU and read its stock through
// the service's stock API (one writer per SKU; the reply comes after the
// event store has made the change durable).
func runStock(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		printStockUsage(stderr)
		if len(args) == 0 {
			return usageError{"stock needs a verb: add or get"}
		}
		return errHelp
	}
	switch args[0] {
	case "add":
		return runStockAdd(ctx, args[1:], stdout, stderr)
	case "get":
		return runStockGet(ctx, args[1:], stdout, stderr)
	}
	printStockUsage(stderr)
	return usageError{fmt.Sprintf("unknown stock verb %q; use add or get", args[0])}
}

func printStockUsage(w io.Writer) {
	fmt.Fprintln(w, "Usage: ordo stock <verb> SKU [flags]   (every verb: --nats-url, --json, --timeout)")
	fmt.Fprintln(w, "\nVerbs:")
	fmt.Fprintf(w, "  %-5s %-40s %s\n", "add", "SKU QTY [--command-id ID]", "add QTY units to the SKU's stock on hand")
	fmt.Fprintf(w, "  %-5s %-40s %s\n", "get", "SKU", "show on hand, reserved and available units")
	fmt.Fprintln(w, "\nExamples:\n  ordo stock add sku-1 1000 --command-id delivery-2024-11-11\n  ordo stock get sku-1 --json")
}

func runStockAdd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flagset.New("ordo stock add SKU QTY [--command-id ID] [--json]",
		"Adds QTY units to the SKU's stock on hand and prints the stock after it. The reply comes once\n"+
			"the event is durable. Resending with the same --command-id adds nothing a second time.",
		[]string{"ordo stock add sku-1 1000", "ordo stock add sku-1 250 --command-id delivery-42 --json"}, stderr)
	cf := addClientFlags(fs)
	if n, ok := negativeNumber(args); ok {
		// The flag package would take it for an unknown flag -5.
		return usageError{fmt.Sprintf("QTY must be a positive whole number of units, got %s", n)}
	}
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return usageError{fmt.Sprintf("stock add needs SKU and QTY, got %d arguments", len(pos))}
	}
	sku := pos[0]
	qty, err := strconv.ParseInt(pos[1], 10, 64)
	if err != nil {
		return usageError{fmt.Sprintf("QTY must be a whole number of units, got %q", pos[1])}
	}
	if err := checkSKU(sku); err != nil {
		return printStockReply(stdout, ordonats.StockReply{}, err, *cf.asJSON)
	}
	client, ctx, done, err := cf.dial(ctx)
	if err != nil {
		return printStockReply(stdout, ordonats.StockReply{}, err, *cf.asJSON)
	}
	defer done()
	reply, err := client.AddStock(ctx, sku, qty, *cf.commandID)
	return printStockReply(stdout, reply, err, *cf.asJSON)
}

// negativeNumber finds an argument such as -5: a negative quantity.
func negativeNumber(args []string) (string, bool) {
	for _, a := range args {
		if len(a) > 1 && a[0] == '-' && strings.Trim(a[1:], "0123456789") == "" {
			return a, true
		}
	}
	return "", false
}

func runStockGet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flagset.New("ordo stock get SKU [--json]",
		"Prints the SKU's stock as its event stream says: on hand (added minus shipped), reserved for\n"+
			"orders that have not shipped, available (on hand minus reserved, never below zero) and the\n"+
			"stream revision. A SKU that never had stock is an error (not_found, exit status 1): an\n"+
			"unknown SKU is more often a typo than a product with nothing on hand.",
		[]string{"ordo stock get sku-1", "ordo stock get sku-1 --json --nats-url nats://10.0.0.5:4222"}, stderr)
	cf := addClientFlags(fs)
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError{fmt.Sprintf("stock get needs exactly one SKU, got %d arguments", len(pos))}
	}
	if err := checkSKU(pos[0]); err != nil {
		return printStockReply(stdout, ordonats.StockReply{}, err, *cf.asJSON)
	}
	client, ctx, done, err := cf.dial(ctx)
	if err != nil {
		return printStockReply(stdout, ordonats.StockReply{}, err, *cf.asJSON)
	}
	defer done()
	view, err := client.GetStock(ctx, pos[0])
	return printStockReply(stdout, ordonats.StockReply{StockView: view}, err, *cf.asJSON)
}

// checkSKU refuses, before anything is sent, a SKU the domain would refuse
// or that cannot be one token of a NATS subject (ordo.stock.v1.<sku>.<op>).
func checkSKU(sku string) error {
	if err := (domain.AddStock{SKU: sku, Quantity: 1}).Validate(); err != nil {
		return err
	}
	if strings.HasPrefix(sku, ".") || strings.HasSuffix(sku, ".") || strings.Contains(sku, "..") {
		return &domain.Error{Code: domain.CodeInvalidCommand, Field: "sku", Message: fmt.Sprintf("may not start or end with a dot or hold two in a row, got %q", sku)}
	}
	return nil
}

// printStockReply prints the stock, or the error: as {"error": {...}} with
// --json (exit status 1), else as ordinary text on stderr via main.
func printStockReply(w io.Writer, r ordonats.StockReply, err error, asJSON bool) error {
	if asJSON {
		return printJSON(w, r, err)
	}
	if err != nil {
		return err
	}
	v := r.StockView
	switch {
	case r.CommandID != "" && len(r.Events) == 0:
		fmt.Fprintf(w, "%s: already added under command %s; nothing changed\n", v.SKU, r.CommandID)
	case r.CommandID != "":
		fmt.Fprintf(w, "%s: added (command %s)\n", v.SKU, r.CommandID)
	}
	fmt.Fprintf(w, "%s  on hand %d  reserved %d  available %d  revision %d\n", v.SKU, v.OnHand, v.Reserved, v.Available, v.Revision)
	return nil
}

// errorBody is the stable {"code","message","field"} of an error: the
// service's own, a local validation's, or "unavailable" for the transport.
func errorBody(err error) *ordonats.ErrorBody {
	var ce *ordonats.CommandError
	var de *domain.Error
	switch {
	case errors.As(err, &ce):
		return &ordonats.ErrorBody{Code: ce.Code, Message: ce.Message, Field: ce.Field}
	case errors.As(err, &de):
		return &ordonats.ErrorBody{Code: string(de.Code), Message: de.Message, Field: de.Field}
	}
	return &ordonats.ErrorBody{Code: string(domain.CodeUnavailable), Message: err.Error()}
}

// printJSON prints v, or the error as {"error": {...}} (exit status 1).
func printJSON(w io.Writer, v any, err error) error {
	if err != nil {
		b, _ := json.Marshal(map[string]any{"error": errorBody(err)})
		fmt.Fprintln(w, string(b))
		return cliError{err}
	}
	b, _ := json.MarshalIndent(v, "", "  ")
	fmt.Fprintln(w, string(b))
	return nil
}
