// Package fetcher is the fetcher stage: it brings ticket versions from the
// ticket system into TICKETS. Two paths feed it:
//
//   - polling: the replica holding the account's lease reads the change feed
//     (updated_since, ascending) from a cursor kept in KV, and advances the
//     cursor only after every publish of a page was acknowledged;
//   - webhooks: every replica accepts Freshdesk automation-rule webhooks,
//     fetches the announced ticket by id and publishes it at once.
//
// Both paths name a version <system>:<account>:<id>:<updated_at> as its
// message id, so the stream keeps each version once however often it is
// read. Versions produced by autotriage's own writes never re-enter
// classification, and a person's change to a field autotriage set is
// reported as an override outcome instead. What people make of the values
// autotriage applied or suggested (kept at resolution, changed, accepted,
// rejected) is reported as feedback outcomes, the evidence of live
// precision (feedback.go). Every version read, whatever
// becomes of it, is recorded as the ticket's newest observed version
// (ledger.Seen), which the writer checks predictions against instead of
// reading the ticket again. Backfill sends a past range through the
// pipeline in shadow mode.
package fetcher

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	v1 "github.com/autotriage/autotriage/proto/autotriage/v1"
	"github.com/autotriage/autotriage/services/internal/ledger"
	"github.com/autotriage/autotriage/services/internal/pipeline"
	"github.com/autotriage/autotriage/services/internal/ticketsystem"
)

// Stage is the stage name in DLQ subjects and headers.
const Stage = "fetcher"

// Source is what the fetcher needs from the ticket system.
type Source interface {
	ticketsystem.TicketGetter
	ticketsystem.ChangeFeed
}

// Bus stores messages in JetStream (*pipeline.Conn implements it).
type Bus interface {
	Publish(ctx context.Context, m pipeline.OutMsg) (pipeline.PubAck, error)
	DeadLetterRaw(ctx context.Context, stage, account, id string, data []byte, reason string, header map[string]string) error
}

// StateKV is the fetcher's KV bucket (pipeline.BucketFetcher) holding the
// cursor, the lease and what was reported per ticket (FeedbackKey) (*pipeline.KV implements it).
type StateKV interface {
	Get(ctx context.Context, key string) (pipeline.Entry, error)
	Create(ctx context.Context, key string, val []byte) (uint64, error)
	Update(ctx context.Context, key string, val []byte, rev uint64) (uint64, error)
}

// Ledger is the writer's record of what autotriage wrote (read only), and
// the fetcher's own record of the newest version of each ticket it
// observed (*ledger.Ledger implements it).
type Ledger interface {
	GetApplied(ctx context.Context, system, account string, id int64) (ledger.Applied, error)
	ObserveSeen(ctx context.Context, system, account string, id int64, s ledger.Seen) (bool, error)
	CreateSeen(ctx context.Context, system, account string, id int64, s ledger.Seen) error
}

// Deps are the collaborators of a Fetcher.
type Deps struct {
	System  string // e.g. "freshdesk"
	Account string // e.g. the Freshdesk subdomain
	Source  Source
	// Catalog, when set, resolves group names (cached for Config.CatalogTTL).
	Catalog    ticketsystem.CatalogReader
	Bus        Bus
	State      StateKV
	Ledger     Ledger
	Log        *slog.Logger
	Registerer prometheus.Registerer
	// PipelineMetrics, when set, counts the fetcher's dead letters in the
	// pipeline series (service.Runtime.Metrics), beside every other stage's.
	PipelineMetrics *pipeline.Metrics
	// Now replaces the clock (tests); default time.Now.
	Now func() time.Time
	// HolderID names this replica in the lease; default host-pid-random.
	HolderID string
	// StopContext, when set, bounds what Run does after its context ended
	// (giving the lease back) by the process's shutdown deadline
	// (platform.Shutdown.Context).
	StopContext func() (context.Context, context.CancelFunc)
}

// Fetcher is one fetcher replica.
type Fetcher struct {
	cfg      Config
	filter   Filter
	system   string
	account  string
	src      Source
	bus      Bus
	state    StateKV
	ledger   Ledger
	log      *slog.Logger
	now      func() time.Time
	holder   string
	metrics  *metrics
	pmetrics *pipeline.Metrics
	catalog  *catalogCache
	seen     *seenCache
	guard    *webhookGuard
	stopCtx  func() (context.Context, context.CancelFunc)

	// releaseOnStop gives the lease back when Run ends; tests turn it off
	// to play a replica that dies.
	releaseOnStop bool
	polling       sync.Mutex // held while a poll runs, so Run never overlaps two
	held          atomic.Bool
	origin        atomic.Pointer[Origin]
	originMu      sync.Mutex // serialises the first Origin read
}

// New checks cfg and deps and returns a replica.
func New(cfg Config, d Deps) (*Fetcher, error) {
	if d.System == "" || d.Account == "" {
		return nil, errors.New("fetcher: system and account are required")
	}
	if d.Source == nil || d.Bus == nil || d.State == nil || d.Ledger == nil {
		return nil, errors.New("fetcher: Source, Bus, State and Ledger are required")
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 1
	}
	filter, err := cfg.filter()
	if err != nil {
		return nil, fmt.Errorf("fetcher: %w", err)
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.HolderID == "" {
		d.HolderID = defaultHolderID()
	}
	f := &Fetcher{
		cfg: cfg, filter: filter, system: d.System, account: d.Account,
		src: d.Source, bus: d.Bus, state: d.State, ledger: d.Ledger,
		log: d.Log.With("account", d.Account), now: d.Now, holder: d.HolderID,
		metrics:       newMetrics(d.Registerer),
		pmetrics:      d.PipelineMetrics,
		seen:          newSeenCache(100_000),
		releaseOnStop: true,
		stopCtx:       d.StopContext,
	}
	if f.guard, err = newWebhookGuard(cfg, f.log); err != nil {
		return nil, fmt.Errorf("fetcher: %w", err)
	}
	f.pmetrics.DeadLetters(Stage, pipeline.CauseInvalidTicket, pipeline.CauseInvalidWebhook)
	f.catalog = &catalogCache{ttl: cfg.CatalogTTL, now: d.Now, log: f.log}
	if d.Catalog != nil {
		f.catalog.src = d.Catalog
	}
	return f, nil
}

func defaultHolderID() string {
	host, _ := os.Hostname()
	if host == "" {
		host = "fetcher"
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return host + "-" + strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(b[:])
}

// HoldsLease reports whether this replica currently holds the polling lease
// (and so is the one polling).
func (f *Fetcher) HoldsLease() bool { return f.held.Load() }

// HolderID names this replica in the lease.
func (f *Fetcher) HolderID() string { return f.holder }

// VersionID is the message id of a live ticket version: the stream keeps one
// message per id within its duplicate window, so polls, overlap re-reads and
// webhooks of the same version collapse into one.
func VersionID(system, account string, id int64, updatedAt time.Time) string {
	return fmt.Sprintf("%s:%s:%d:%s", system, account, id, updatedAt.UTC().Format(time.RFC3339))
}

// OverrideID is the message id of an override outcome.
func OverrideID(system, account string, id int64, field string, updatedAt time.Time) string {
	return fmt.Sprintf("override:%s:%s:%d:%s:%s", system, account, id, field, updatedAt.UTC().Format(time.RFC3339))
}

// Result says what became of one ticket version.
type Result struct {
	// Status is "published", "duplicate" (the stream had it), "skipped"
	// (Reason says why) or "invalid" (dead-lettered: malformed, or
	// ReasonUnreadable).
	Status string
	Reason string
	// Overrides lists the fields reported as overridden by this version.
	Overrides []string
}

// Headers of the fetcher's dead letters that name a ticket version.
const (
	HeaderTicketID        = "Autotriage-Ticket-Id"
	HeaderTicketUpdatedAt = "Autotriage-Ticket-Updated-At"
)

// ReasonUnreadable is Result.Reason of a version dead-lettered because the
// ticket system could not deliver it within the response limit.
const ReasonUnreadable = "unreadable"

// Result statuses.
const (
	StatusPublished = "published"
	StatusDuplicate = "duplicate"
	StatusSkipped   = "skipped"
	StatusInvalid   = "invalid"
)

// publishOpts carry what differs between live and backfill publishes.
type publishOpts struct {
	arrival    v1.Arrival
	idPrefix   string // "" for live versions; "backfill:<batch>:" for backfill
	shadowOnly bool
	batchID    string
	// live applies the own-version, override and triage checks.
	live bool
	// filter applies the triage filter even when !live.
	filter bool
}

// arrivalLabel is the metric label of an arrival.
func arrivalLabel(a v1.Arrival) string {
	switch a {
	case v1.Arrival_ARRIVAL_POLL:
		return "poll"
	case v1.Arrival_ARRIVAL_WEBHOOK:
		return "webhook"
	case v1.Arrival_ARRIVAL_BACKFILL:
		return "backfill"
	case v1.Arrival_ARRIVAL_REPLAY:
		return "replay"
	}
	return "unspecified"
}

// handle decides about one ticket version and publishes it if it needs
// triage. An error means the version may not have been handled (a publish,
// a ledger read or the seen record failed) and must be tried again;
// malformed versions are dead-lettered and are not errors.
//
// Every valid version is first recorded as the ticket's newest observed
// version (ledger.Seen), whatever becomes of it: the writer compares a
// prediction's version with it to leave alone what a person changed since,
// without reading the ticket again. A version whose observation could not
// be recorded counts as not handled, like one whose publish failed, so the
// poll does not move the cursor past it (the page is read again on the next
// poll) and a webhook is answered 503 (Freshdesk retries): otherwise a
// person's change could be invisible to the writer and overwritten by an
// older prediction.
func (f *Fetcher) handle(ctx context.Context, t *ticketsystem.Ticket, o publishOpts) (Result, error) {
	src := arrivalLabel(o.arrival)
	f.metrics.fetched.WithLabelValues(src).Inc()
	if err := validateTicket(t); err != nil {
		return f.deadLetterTicket(ctx, t, src, err)
	}
	first, err := f.observe(ctx, t, o.live)
	if err != nil {
		return Result{}, err
	}
	switch {
	case o.live && first:
		// The first observation of the ticket by any fetcher: the seen
		// record is the fetcher's alone, and the writer writes only tickets
		// a fetcher published after observing them, so there is no write of
		// autotriage's to recognise or overrides to look for, and the
		// ledger read is saved. (Should a ledger record outlive the seen
		// record in the bucket's TTL, this version is classified once more;
		// the same decision finds its fields set and its note written, so
		// nothing is written twice.)
		f.seen.put(t.ID, snapshotOf(t))
	case o.live:
		res, done, err := f.checkLedger(ctx, t)
		if err != nil || done {
			return res, err
		}
	}
	if o.live {
		before, err := f.beforeStart(ctx, t.CreatedAt)
		if err != nil {
			return Result{}, err
		}
		if before {
			f.metrics.filtered.WithLabelValues(ReasonBeforeStart).Inc()
			f.log.Debug("ticket created before the triage start; not triaged", "ticket", t.ID, "created_at", t.CreatedAt)
			return Result{Status: StatusSkipped, Reason: ReasonBeforeStart}, nil
		}
	}
	if o.live || o.filter {
		if reason := f.filter.Check(t); reason != "" {
			f.metrics.filtered.WithLabelValues(reason).Inc()
			return Result{Status: StatusSkipped, Reason: reason}, nil
		}
	}
	return f.publishTicket(ctx, t, o)
}

// observe records t as the ticket's newest observed version (a no-op when
// a newer one is recorded). A failure is logged and counted and returned.
// A live version of a ticket this replica has not seen is first tried as a
// create (new tickets: one KV round trip instead of two); first reports
// that the create succeeded, i.e. nobody had recorded a version before.
func (f *Fetcher) observe(ctx context.Context, t *ticketsystem.Ticket, live bool) (first bool, err error) {
	s := ledger.SeenOf(t, f.now())
	if live && !f.seen.has(t.ID) {
		err := f.ledger.CreateSeen(ctx, f.system, f.account, t.ID, s)
		if err == nil {
			f.metrics.seenStored.Inc()
			return true, nil
		}
		if !errors.Is(err, pipeline.ErrExists) {
			f.metrics.seenErrors.Inc()
			f.log.Warn("cannot record the observed ticket version; the version will be read again", "ticket", t.ID, "updated_at", t.UpdatedAt, "err", err)
			return false, fmt.Errorf("record observed version of ticket %d: %w", t.ID, err)
		}
	}
	stored, err := f.ledger.ObserveSeen(ctx, f.system, f.account, t.ID, s)
	if err != nil {
		f.metrics.seenErrors.Inc()
		f.log.Warn("cannot record the observed ticket version; the version will be read again", "ticket", t.ID, "updated_at", t.UpdatedAt, "err", err)
		return false, fmt.Errorf("record observed version of ticket %d: %w", t.ID, err)
	}
	if stored {
		f.metrics.seenStored.Inc()
	}
	return false, nil
}

func (f *Fetcher) publishTicket(ctx context.Context, t *ticketsystem.Ticket, o publishOpts) (Result, error) {
	if t.Unreadable != "" {
		return f.deadLetterUnreadable(ctx, t, o)
	}
	now := f.now()
	pt := ToProto(f.system, f.account, t, f.catalog.groupName(ctx, t.GroupID), o.arrival, now)
	pt.ShadowOnly = o.shadowOnly
	pt.BatchId = o.batchID
	data, err := proto.Marshal(pt)
	if err != nil {
		return Result{}, fmt.Errorf("encode ticket %d: %w", t.ID, err)
	}
	ack, err := f.bus.Publish(ctx, pipeline.OutMsg{
		Subject: pipeline.TicketSubject(f.system, f.account, t.ID),
		ID:      o.idPrefix + VersionID(f.system, f.account, t.ID, t.UpdatedAt),
		Data:    data,
		Header:  map[string]string{pipeline.HeaderContentType: pipeline.ContentTypeProtobuf},
	})
	if err != nil {
		return Result{}, fmt.Errorf("publish ticket %d: %w", t.ID, err)
	}
	label := arrivalLabel(o.arrival)
	if ack.Duplicate {
		f.metrics.duplicates.WithLabelValues(label).Inc()
		return Result{Status: StatusDuplicate}, nil
	}
	f.metrics.published.WithLabelValues(label).Inc()
	return Result{Status: StatusPublished}, nil
}

// deadLetterTicket copies a malformed version to the DLQ. It fails only if
// the DLQ itself cannot be written.
func (f *Fetcher) deadLetterTicket(ctx context.Context, t *ticketsystem.Ticket, source string, cause error) (Result, error) {
	f.metrics.invalid.WithLabelValues(source).Inc()
	f.log.Warn("malformed ticket from the ticket system; sent to the DLQ", "source", source, "ticket", t.ID, "err", cause)
	body, err := json.Marshal(t)
	if err != nil {
		body = []byte(fmt.Sprintf(`{"id":%d}`, t.ID))
	}
	id := fmt.Sprintf("fetcher:invalid:%s:%s:%d:%s", f.system, f.account, t.ID, t.UpdatedAt.UTC().Format(time.RFC3339Nano))
	if err := f.bus.DeadLetterRaw(ctx, Stage, f.account, id, body, cause.Error(),
		map[string]string{pipeline.HeaderContentType: "application/json"}); err != nil {
		return Result{}, fmt.Errorf("dead-letter malformed ticket %d: %w", t.ID, err)
	}
	f.pmetrics.DeadLettered(Stage, pipeline.CauseInvalidTicket)
	return Result{Status: StatusInvalid, Reason: cause.Error()}, nil
}

// deadLetterUnreadable copies a version the ticket system could not deliver
// within the response limit (ticketsystem.Ticket.Unreadable: its fields
// without the description) to the DLQ in place of publishing it, so the
// page counts as handled and the cursor moves past it; an operator sees the
// ticket id and the reason. Its message id names the version, so re-reading
// it (the poll's overlap, a rerun backfill) stores one copy. It fails only
// if the DLQ cannot be written.
func (f *Fetcher) deadLetterUnreadable(ctx context.Context, t *ticketsystem.Ticket, o publishOpts) (Result, error) {
	src := arrivalLabel(o.arrival)
	f.metrics.unreadable.WithLabelValues(src).Inc()
	f.log.Warn("ticket version too large to read; sent to the DLQ instead of triage", "source", src,
		"ticket", t.ID, "updated_at", t.UpdatedAt, "reason", t.Unreadable)
	body, err := json.Marshal(t)
	if err != nil {
		body = []byte(fmt.Sprintf(`{"ID":%d}`, t.ID))
	}
	id := fmt.Sprintf("fetcher:unreadable:%s%s:%s:%d:%s", o.idPrefix, f.system, f.account, t.ID, t.UpdatedAt.UTC().Format(time.RFC3339))
	hdr := map[string]string{
		pipeline.HeaderContentType: "application/json",
		HeaderTicketID:             strconv.FormatInt(t.ID, 10),
		HeaderTicketUpdatedAt:      t.UpdatedAt.UTC().Format(time.RFC3339),
	}
	if err := f.bus.DeadLetterRaw(ctx, Stage, f.account, id, body, "unreadable: "+t.Unreadable, hdr); err != nil {
		return Result{}, fmt.Errorf("dead-letter unreadable ticket %d: %w", t.ID, err)
	}
	return Result{Status: StatusInvalid, Reason: ReasonUnreadable}, nil
}

// checkLedger keeps autotriage's own versions out of classification and
// reports overrides. done is true when the version must not be published.
//
// With a ledger record for the ticket:
//   - a version at or before WrittenUpdatedAt is autotriage's own write (or
//     older than it): skipped;
//   - a later version where a person changed a field autotriage set is an
//     override: reported once per field, and not classified again;
//   - a later version that differs from the last version seen at or before
//     the write only in what autotriage set (a note bumping updated_at after
//     the PUT, say) is skipped as own_write.
func (f *Fetcher) checkLedger(ctx context.Context, t *ticketsystem.Ticket) (res Result, done bool, err error) {
	prev, hadPrev := f.seen.get(t.ID)
	f.seen.put(t.ID, snapshotOf(t))
	a, err := f.ledger.GetApplied(ctx, f.system, f.account, t.ID)
	switch {
	case errors.Is(err, pipeline.ErrNotFound):
		return Result{}, false, nil
	case isDecodeError(err):
		f.log.Warn("unreadable ledger record; treating the ticket as untouched by autotriage", "ticket", t.ID, "err", err)
		return Result{}, false, nil
	case err != nil:
		return Result{}, false, fmt.Errorf("read ledger of ticket %d: %w", t.ID, err)
	}
	skip := func(reason string) (Result, bool, error) {
		f.metrics.filtered.WithLabelValues(reason).Inc()
		return Result{Status: StatusSkipped, Reason: reason}, true, nil
	}
	if a.IsOwnVersion(t.UpdatedAt) {
		return skip(ReasonOwnVersion)
	}
	if !a.WrittenUpdatedAt.IsZero() && t.UpdatedAt.Before(a.WrittenUpdatedAt) {
		return skip(ReasonStale)
	}
	rr := f.reported(t.ID)
	if err := f.detectFeedback(ctx, t, a, rr); err != nil {
		return Result{}, false, err
	}
	fields, overridden, err := f.detectOverrides(ctx, t, a, rr)
	if err != nil {
		return Result{}, false, err
	}
	if len(fields) > 0 || overridden {
		f.metrics.filtered.WithLabelValues(ReasonOverride).Inc()
		return Result{Status: StatusSkipped, Reason: ReasonOverride, Overrides: fields}, true, nil
	}
	if hadPrev && !a.WrittenUpdatedAt.IsZero() && !prev.updatedAt.After(a.WrittenUpdatedAt) &&
		onlyAutotriageDiffers(prev, snapshotOf(t), a.Fields, f.cfg.Tag) {
		return skip(ReasonOwnWrite)
	}
	return Result{}, false, nil
}

func isDecodeError(err error) bool {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	return errors.As(err, &se) || errors.As(err, &te)
}
