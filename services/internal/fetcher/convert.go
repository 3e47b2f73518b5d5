package fetcher

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sort"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	v1 "github.com/autotriage/autotriage/proto/autotriage/v1"
	"github.com/autotriage/autotriage/services/internal/classify"
	"github.com/autotriage/autotriage/services/internal/ticketsystem"
)

// Check returns "" when t needs triage, else the reason it does not (a
// Reason* constant).
func (f Filter) Check(t *ticketsystem.Ticket) string {
	if t.Spam || t.Deleted {
		return ReasonSpamDeleted
	}
	if len(f.Statuses) > 0 && !slices.Contains(f.Statuses, t.Status) {
		return ReasonStatus
	}
	if !f.CreatedAfter.IsZero() && t.CreatedAt.Before(f.CreatedAfter) {
		return ReasonCreatedBefore
	}
	if len(f.When) == 0 {
		return ""
	}
	for _, c := range f.When {
		switch c {
		case "always":
			return ""
		case "no_group":
			if t.GroupID == 0 {
				return ""
			}
		case "no_type":
			if t.Type == "" {
				return ""
			}
		case "untagged":
			if !t.HasTag(f.Tag) {
				return ""
			}
		}
	}
	return ReasonAlreadyTriaged
}

// validateTicket rejects versions the pipeline cannot name: a real ticket has
// a positive id and an updated_at.
func validateTicket(t *ticketsystem.Ticket) error {
	switch {
	case t.ID <= 0:
		return fmt.Errorf("ticket id %d is not positive", t.ID)
	case t.UpdatedAt.IsZero():
		return fmt.Errorf("ticket %d has no updated_at", t.ID)
	}
	return nil
}

// ToProto converts a ticket version to the pipeline's message. groupName
// may be "" when the catalog is unavailable. The description is cut to the
// classifier's input limit (classify.MaxRawBytes, at a UTF-8 boundary):
// description_truncated says so and description_bytes keeps the size read.
func ToProto(system, account string, t *ticketsystem.Ticket, groupName string, arrival v1.Arrival, fetchedAt time.Time) *v1.Ticket {
	desc, cut := classify.CutRaw(t.Description)
	p := &v1.Ticket{
		System:               system,
		Account:              account,
		Id:                   t.ID,
		Subject:              t.Subject,
		DescriptionText:      desc,
		DescriptionTruncated: cut,
		DescriptionBytes:     int64(len(t.Description)),
		Tags:                 slices.Clone(t.Tags),
		Type:                 t.Type,
		GroupId:              t.GroupID,
		Priority:             clampInt32(t.Priority),
		Status:               clampInt32(t.Status),
		Source:               clampInt32(t.Source),
		RequesterId:          t.RequesterID,
		ResponderId:          t.ResponderID,
		GroupName:            groupName,
		Arrival:              arrival,
		FetchedAt:            timestamppb.New(fetchedAt.UTC()),
		UpdatedAt:            timestamppb.New(t.UpdatedAt.UTC()),
	}
	if !t.CreatedAt.IsZero() {
		p.CreatedAt = timestamppb.New(t.CreatedAt.UTC())
	}
	if len(t.CustomFields) > 0 {
		p.CustomFields = make(map[string]*v1.CustomValue, len(t.CustomFields))
		for k, v := range t.CustomFields {
			if cv := customValue(v); cv != nil {
				p.CustomFields[k] = cv
			}
		}
	}
	return p
}

func clampInt32(n int) int32 {
	return int32(max(math.MinInt32, min(math.MaxInt32, n)))
}

// customValue maps an adapter value (string, bool, int64, float64, nil, or
// raw JSON for arrays and objects) to a CustomValue; nil means "unset" and
// the key is left out, as the proto contract says.
func customValue(v any) *v1.CustomValue {
	switch x := v.(type) {
	case nil:
		return nil
	case string:
		return &v1.CustomValue{Kind: &v1.CustomValue_StringValue{StringValue: x}}
	case bool:
		return &v1.CustomValue{Kind: &v1.CustomValue_BoolValue{BoolValue: x}}
	case int:
		return &v1.CustomValue{Kind: &v1.CustomValue_IntValue{IntValue: int64(x)}}
	case int32:
		return &v1.CustomValue{Kind: &v1.CustomValue_IntValue{IntValue: int64(x)}}
	case int64:
		return &v1.CustomValue{Kind: &v1.CustomValue_IntValue{IntValue: x}}
	case float64:
		return &v1.CustomValue{Kind: &v1.CustomValue_NumberValue{NumberValue: x}}
	case json.RawMessage:
		return &v1.CustomValue{Kind: &v1.CustomValue_StringValue{StringValue: string(x)}}
	default:
		b, err := json.Marshal(x)
		if err != nil {
			return &v1.CustomValue{Kind: &v1.CustomValue_StringValue{StringValue: fmt.Sprint(x)}}
		}
		return &v1.CustomValue{Kind: &v1.CustomValue_StringValue{StringValue: string(b)}}
	}
}

// catalogCache keeps the helpdesk catalog for a TTL. A failed refresh keeps
// the stale copy and is not retried for a minute, so an unreachable catalog
// costs one API call a minute, not one per ticket.
type catalogCache struct {
	src ticketsystem.CatalogReader // nil: no catalog, group names stay empty
	ttl time.Duration
	now func() time.Time
	log *slog.Logger

	mu      sync.Mutex
	cat     *ticketsystem.Catalog
	fetched time.Time
	retryAt time.Time
}

// groupName returns the name of group id, or "" when unknown.
func (c *catalogCache) groupName(ctx context.Context, id int64) string {
	if id == 0 || c.src == nil {
		return ""
	}
	cat := c.get(ctx)
	if cat == nil {
		return ""
	}
	for _, g := range cat.Groups {
		if g.ID == id {
			return g.Name
		}
	}
	return ""
}

func (c *catalogCache) get(ctx context.Context) *ticketsystem.Catalog {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if c.cat != nil && now.Sub(c.fetched) < c.ttl {
		return c.cat
	}
	if now.Before(c.retryAt) {
		return c.cat
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cat, err := c.src.Catalog(cctx)
	if err != nil {
		c.retryAt = now.Add(time.Minute)
		c.log.Warn("catalog unavailable; group names left empty or stale", "err", err)
		return c.cat
	}
	c.cat, c.fetched = cat, now
	return cat
}

// contentKey fingerprints what the classifier sees of a version apart from
// the fields autotriage may set (group, type, priority, tags), which
// snapshot keeps separately.
func contentKey(t *ticketsystem.Ticket) [32]byte {
	h := sha256.New()
	str := func(s string) {
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	num := func(v int64) {
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], uint64(v))
		h.Write(n[:])
	}
	str(t.Subject)
	str(t.Description)
	num(int64(t.Status))
	num(t.ResponderID)
	num(t.RequesterID)
	num(int64(t.Source))
	keys := make([]string, 0, len(t.CustomFields))
	for k := range t.CustomFields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		str(k)
		str(fmt.Sprintf("%T:%v", t.CustomFields[k], t.CustomFields[k]))
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}
