package domain

// Fast decoders of the stock events' payloads (the types live in stock.go);
// see decode_json.go.

func decodeInventoryAdded(l *payloadLexer, v *InventoryAdded) bool {
	var seen uint32
	return l.object(func(k []byte) bool {
		switch string(k) {
		case "sku":
			return once(&seen, 0) && l.str(&v.SKU)
		case "quantity":
			return once(&seen, 1) && l.int(&v.Quantity)
		}
		return false
	})
}

// inventoryMove is the shape of InventoryReleased and InventoryCommitted.
func (l *payloadLexer) inventoryMove(sku, orderID *string, quantity *int64) bool {
	var seen uint32
	return l.object(func(k []byte) bool {
		switch string(k) {
		case "sku":
			return once(&seen, 0) && l.str(sku)
		case "order_id":
			return once(&seen, 1) && l.str(orderID)
		case "quantity":
			return once(&seen, 2) && l.int(quantity)
		}
		return false
	})
}

func decodeInventoryReserved(l *payloadLexer, v *InventoryReserved) bool {
	var seen uint32
	return l.object(func(k []byte) bool {
		switch string(k) {
		case "sku":
			return once(&seen, 0) && l.str(&v.SKU)
		case "order_id":
			return once(&seen, 1) && l.str(&v.OrderID)
		case "quantity":
			return once(&seen, 2) && l.int(&v.Quantity)
		case "orders":
			return once(&seen, 3) && l.reservations(&v.Orders)
		}
		return false
	})
}

// reservations reads the orders of a batched InventoryReserved.
func (l *payloadLexer) reservations(dst *[]Reservation) bool {
	if l.null() {
		return true
	}
	out := make([]Reservation, 0, 8)
	ok := l.array(func() bool {
		var r Reservation
		var seen uint32
		if !l.object(func(k []byte) bool {
			switch string(k) {
			case "order_id":
				return once(&seen, 0) && l.str(&r.OrderID)
			case "quantity":
				return once(&seen, 1) && l.int(&r.Quantity)
			case "command_id":
				return once(&seen, 2) && l.str(&r.CommandID)
			case "correlation_id":
				return once(&seen, 3) && l.str(&r.CorrelationID)
			case "causation_id":
				return once(&seen, 4) && l.str(&r.CausationID)
			}
			return false
		}) {
			return false
		}
		out = append(out, r)
		return true
	})
	*dst = out
	return ok
}

func decodeInventoryReleased(l *payloadLexer, v *InventoryReleased) bool {
	return l.inventoryMove(&v.SKU, &v.OrderID, &v.Quantity)
}

func decodeInventoryCommitted(l *payloadLexer, v *InventoryCommitted) bool {
	return l.inventoryMove(&v.SKU, &v.OrderID, &v.Quantity)
}
