package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ordo-dev/ordo/domain"
	ordonats "github.com/ordo-dev/ordo/nats"
)

// DeadLetter is one command the workers gave up on, as GET /v1/deadletters
// shows it.
type DeadLetter struct {
	Sequence    uint64    `json:"seq"`
	Time        time.Time `json:"time"`
	Subject     string    `json:"subject"` // the command's original subject
	OrderID     string    `json:"order_id,omitempty"`
	CommandType string    `json:"command_type,omitempty"`
	CommandID   string    `json:"command_id,omitempty"`
	Code        string    `json:"code"`
	Reason      string    `json:"reason"`
	Body        string    `json:"body"` // the first deadLetterBody bytes
}

// DeadLetterPage is the answer of GET /v1/deadletters: the newest dead
// letters first and how many the stream holds.
type DeadLetterPage struct {
	Total uint64       `json:"total"`
	Items []DeadLetter `json:"items"`
}

const deadLetterBody = 256

// serveDeadLetters answers GET /v1/deadletters?limit=N (1-100, default 20)
// from the dead-letter stream.
func (s *Service) serveDeadLetters(w http.ResponseWriter, r *http.Request) {
	if !onlyParams(w, r, "/v1/deadletters", "limit") {
		return
	}
	limit := 20
	if raw := r.URL.Query().Get("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > 100 {
			writeFieldError(w, domain.CodeInvalidCommand, "limit", fmt.Sprintf("must be a whole number from 1 to 100, got %.64q", raw))
			return
		}
		limit = n
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	page, err := readDeadLetters(ctx, mustJS(s.nc), limit)
	if err != nil {
		s.log.Warn("read dead letters", "err", err)
		w.Header().Set("Retry-After", "1")
		writeFieldError(w, domain.CodeUnavailable, "", "the dead-letter stream could not be read; try again")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(page)
}

// readDeadLetters reads the newest limit messages of the dead-letter
// stream, newest first.
func readDeadLetters(ctx context.Context, js jetstream.JetStream, limit int) (DeadLetterPage, error) {
	page := DeadLetterPage{Items: []DeadLetter{}}
	stream, err := js.Stream(ctx, ordonats.StreamDeadLetter)
	if err != nil {
		return page, fmt.Errorf("stream %s: %w", ordonats.StreamDeadLetter, err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return page, fmt.Errorf("stream %s info: %w", ordonats.StreamDeadLetter, err)
	}
	page.Total = info.State.Msgs
	for seq := info.State.LastSeq; seq >= info.State.FirstSeq && seq > 0 && len(page.Items) < limit; seq-- {
		m, err := stream.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // removed by the stream's limits meanwhile
		}
		if err != nil {
			return page, fmt.Errorf("dead letter %d: %w", seq, err)
		}
		page.Items = append(page.Items, deadLetterOf(m))
	}
	return page, nil
}

func deadLetterOf(m *jetstream.RawStreamMsg) DeadLetter {
	d := DeadLetter{Sequence: m.Sequence, Time: m.Time.UTC(), Subject: strings.TrimPrefix(m.Subject, ordonats.SubjectDeadPrefix),
		Code: m.Header.Get(ordonats.HeaderDeadCode), Reason: m.Header.Get(ordonats.HeaderDeadReason),
		CommandID: m.Header.Get(ordonats.HeaderCommandID)}
	// ordo.cmd.order.<order-id>.<CommandType>
	if rest, ok := strings.CutPrefix(d.Subject, ordonats.SubjectCommandPrefix); ok {
		if id, typ, ok := strings.Cut(rest, "."); ok {
			d.OrderID, d.CommandType = id, typ
		}
	}
	body := m.Data
	if len(body) > deadLetterBody {
		body = body[:deadLetterBody]
	}
	d.Body = strings.ToValidUTF8(string(body), "")
	return d
}
