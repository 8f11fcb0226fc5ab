package commands

import (
	"context"
	"sort"

	"github.com/ordo-dev/ordo/domain"
)

// Busiest returns the stock of at most n SKUs with a live writer (a
// command within StockOptions.IdleStop), those that took the most commands
// first: what an operator watches in a flash sale, with a bounded number
// of SKUs however many exist. A SKU whose stock cannot be read in time is
// left out.
func (s *StockService) Busiest(ctx context.Context, n int) []domain.StockView {
	type busy struct {
		sku     string
		handled int64
	}
	s.mu.Lock()
	all := make([]busy, 0, len(s.lanes))
	for sku, l := range s.lanes {
		all = append(all, busy{sku, l.handled.Load()})
	}
	s.mu.Unlock()
	sort.Slice(all, func(i, j int) bool {
		if all[i].handled != all[j].handled {
			return all[i].handled > all[j].handled
		}
		return all[i].sku < all[j].sku
	})
	out := make([]domain.StockView, 0, min(n, len(all)))
	for _, b := range all[:min(n, len(all))] {
		if v, err := s.Get(ctx, b.sku); err == nil {
			out = append(out, v)
		}
	}
	return out
}
