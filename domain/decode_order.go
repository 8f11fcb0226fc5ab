package domain

// Fast decoders of the order's event payloads; see decode_json.go.

func decodeOrderPlaced(l *payloadLexer, v *OrderPlaced) bool {
	var seen uint32
	return l.object(func(k []byte) bool {
		switch string(k) {
		case "order_id":
			return once(&seen, 0) && l.str(&v.OrderID)
		case "customer_id":
			return once(&seen, 1) && l.str(&v.CustomerID)
		case "lines":
			return once(&seen, 2) && l.lines(&v.Lines)
		case "total":
			return once(&seen, 3) && l.money(&v.Total)
		}
		return false
	})
}

func (l *payloadLexer) lines(dst *[]Line) bool {
	if l.null() {
		return true
	}
	out := make([]Line, 0, 4)
	ok := l.array(func() bool {
		var ln Line
		var seen uint32
		if !l.object(func(k []byte) bool {
			switch string(k) {
			case "sku":
				return once(&seen, 0) && l.str(&ln.SKU)
			case "quantity":
				return once(&seen, 1) && l.int(&ln.Quantity)
			case "unit_price":
				return once(&seen, 2) && l.int(&ln.UnitPrice)
			}
			return false
		}) {
			return false
		}
		out = append(out, ln)
		return true
	})
	*dst = out
	return ok
}

func decodeStockRejected(l *payloadLexer, v *StockRejected) bool {
	var seen uint32
	return l.object(func(k []byte) bool {
		switch string(k) {
		case "reason":
			return once(&seen, 0) && l.str(&v.Reason)
		case "skus":
			return once(&seen, 1) && l.stringList(&v.SKUs)
		}
		return false
	})
}

func decodePaymentSucceeded(l *payloadLexer, v *PaymentSucceeded) bool {
	var seen uint32
	return l.object(func(k []byte) bool {
		switch string(k) {
		case "payment_id":
			return once(&seen, 0) && l.str(&v.PaymentID)
		case "amount":
			return once(&seen, 1) && l.money(&v.Amount)
		case "provider":
			return once(&seen, 2) && l.str(&v.Provider)
		case "late":
			return once(&seen, 3) && l.bool(&v.Late)
		case "extra":
			return once(&seen, 4) && l.bool(&v.Extra)
		}
		return false
	})
}

func decodePaymentAmountMismatched(l *payloadLexer, v *PaymentAmountMismatched) bool {
	var seen uint32
	return l.object(func(k []byte) bool {
		switch string(k) {
		case "payment_id":
			return once(&seen, 0) && l.str(&v.PaymentID)
		case "amount":
			return once(&seen, 1) && l.money(&v.Amount)
		case "expected":
			return once(&seen, 2) && l.money(&v.Expected)
		case "provider":
			return once(&seen, 3) && l.str(&v.Provider)
		}
		return false
	})
}

func decodePaymentFailed(l *payloadLexer, v *PaymentFailed) bool {
	var seen uint32
	return l.object(func(k []byte) bool {
		switch string(k) {
		case "payment_id":
			return once(&seen, 0) && l.str(&v.PaymentID)
		case "reason":
			return once(&seen, 1) && l.str(&v.Reason)
		case "provider":
			return once(&seen, 2) && l.str(&v.Provider)
		}
		return false
	})
}

func decodeOrderCancelled(l *payloadLexer, v *OrderCancelled) bool {
	var seen uint32
	return l.object(func(k []byte) bool {
		if string(k) == "reason" {
			return once(&seen, 0) && l.str(&v.Reason)
		}
		return false
	})
}

func decodeOrderShipped(l *payloadLexer, v *OrderShipped) bool {
	var seen uint32
	return l.object(func(k []byte) bool {
		switch string(k) {
		case "carrier":
			return once(&seen, 0) && l.str(&v.Carrier)
		case "tracking_number":
			return once(&seen, 1) && l.str(&v.TrackingNumber)
		}
		return false
	})
}

func decodeRefundRequested(l *payloadLexer, v *RefundRequested) bool {
	var seen uint32
	return l.object(func(k []byte) bool {
		switch string(k) {
		case "refund_id":
			return once(&seen, 0) && l.str(&v.RefundID)
		case "amount":
			return once(&seen, 1) && l.money(&v.Amount)
		case "reason":
			return once(&seen, 2) && l.str(&v.Reason)
		case "automatic":
			return once(&seen, 3) && l.bool(&v.Automatic)
		}
		return false
	})
}

func decodeRefundCompleted(l *payloadLexer, v *RefundCompleted) bool {
	var seen uint32
	return l.object(func(k []byte) bool {
		switch string(k) {
		case "refund_id":
			return once(&seen, 0) && l.str(&v.RefundID)
		case "amount":
			return once(&seen, 1) && l.money(&v.Amount)
		}
		return false
	})
}

func decodeRefundRejected(l *payloadLexer, v *RefundRejected) bool {
	var seen uint32
	return l.object(func(k []byte) bool {
		switch string(k) {
		case "refund_id":
			return once(&seen, 0) && l.str(&v.RefundID)
		case "reason":
			return once(&seen, 1) && l.str(&v.Reason)
		}
		return false
	})
}

func decodeOrderRefunded(l *payloadLexer, v *OrderRefunded) bool {
	var seen uint32
	return l.object(func(k []byte) bool {
		if string(k) == "amount" {
			return once(&seen, 0) && l.money(&v.Amount)
		}
		return false
	})
}
