package quality

import (
	"sort"
	"sync"
	"time"

	v1 "github.com/autotriage/autotriage/proto/autotriage/v1"
)

// Default window: the last 200 verdicts of a class, none older than 30 days.
//
// 200 verdicts bound the interval's half-width to about 3 points at a
// precision of 0.95 (Wilson lower bound 0.91 at 190 of 200), narrow enough
// for a demotion decision against a target such as 0.90, while a class that
// starts failing moves its lower bound below the target within a few dozen
// bad verdicts. 30 days keep a rare class from being judged on months-old
// behaviour (a model or the helpdesk's routing changed since) while still
// giving it enough verdicts to say something.
const (
	DefaultWindow = 200
	DefaultMaxAge = 30 * 24 * time.Hour
)

// Options configure a Tracker. Zero values take the defaults. The count
// bound is always on (memory stays bounded); MaxAge < 0 turns the age bound
// off.
type Options struct {
	// Window is how many of the latest verdicts per (field, class) and per
	// (model, field) count.
	Window int
	// MaxAge drops verdicts observed longer ago than this.
	MaxAge time.Duration
	// Z of the Wilson interval (default DefaultZ, 95%).
	Z float64
	// Now replaces the clock (tests).
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.Window <= 0 {
		o.Window = DefaultWindow
	}
	if o.MaxAge == 0 {
		o.MaxAge = DefaultMaxAge
	}
	if o.Z <= 0 {
		o.Z = DefaultZ
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// ClassStats is the live precision of one class of one field.
type ClassStats struct {
	Field     string  `json:"field"`
	Label     string  `json:"label"`
	N         int     `json:"n"`
	Correct   int     `json:"correct"`
	Precision float64 `json:"precision"`
	Lower     float64 `json:"lower"`
	Upper     float64 `json:"upper"`
}

// ModelStats is the live precision of one model on one field.
type ModelStats struct {
	ModelID   string  `json:"model_id"`
	Field     string  `json:"field"`
	N         int     `json:"n"`
	Correct   int     `json:"correct"`
	Precision float64 `json:"precision"`
	Lower     float64 `json:"lower"`
	Upper     float64 `json:"upper"`
}

// Tracker keeps rolling verdict counts. It is safe for concurrent use.
type Tracker struct {
	o Options

	mu          sync.Mutex
	classes     map[pair]*ring
	models      map[pair]*ring
	ignored     int
	undecodable int
}

type pair struct{ a, b string }

// NewTracker returns an empty Tracker.
func NewTracker(o Options) *Tracker {
	return &Tracker{o: o.withDefaults(), classes: map[pair]*ring{}, models: map[pair]*ring{}}
}

// Options returns the tracker's options with the defaults filled in.
func (t *Tracker) Options() Options { return t.o }

// Correct reports whether a verdict counts as correct, and whether it
// counts at all.
func Correct(v v1.Verdict) (correct, counts bool) {
	switch v {
	case v1.Verdict_VERDICT_CONFIRMED, v1.Verdict_VERDICT_ACCEPTED:
		return true, true
	case v1.Verdict_VERDICT_OVERRIDDEN, v1.Verdict_VERDICT_REJECTED:
		return false, true
	}
	return false, false
}

// Observe counts the verdict an outcome carries (FEEDBACK outcomes, and
// OVERRIDE outcomes with feedback). Outcomes without feedback, or with an
// unknown verdict or no field, are ignored. Verdicts should arrive in
// stream order; the window keeps the latest Window arrivals.
//
// The model is the feedback's model id, else its version, else the
// outcome's.
func (t *Tracker) Observe(o *v1.Outcome) {
	fb := o.GetFeedback()
	if fb == nil {
		return
	}
	correct, counts := Correct(fb.GetVerdict())
	if !counts || fb.GetField() == "" {
		t.mu.Lock()
		t.ignored++
		t.mu.Unlock()
		return
	}
	at := fb.GetObservedAt().AsTime()
	if fb.GetObservedAt() == nil {
		at = o.GetAt().AsTime()
		if o.GetAt() == nil {
			at = t.o.Now()
		}
	}
	model := firstNonEmpty(fb.GetModelId(), fb.GetModelVersion(), o.GetModelId(), o.GetModelVersion())
	t.mu.Lock()
	defer t.mu.Unlock()
	t.add(t.classes, pair{fb.GetField(), fb.GetLabel()}, at, correct)
	if model != "" {
		t.add(t.models, pair{model, fb.GetField()}, at, correct)
	}
}

func (t *Tracker) add(m map[pair]*ring, k pair, at time.Time, correct bool) {
	r := m[k]
	if r == nil {
		r = &ring{buf: make([]entry, 0, min(t.o.Window, 16))}
		m[k] = r
	}
	r.push(entry{at: at, correct: correct}, t.o.Window)
}

// ClassPrecision returns the verdicts in the window for one class of one
// field and how many were correct.
func (t *Tracker) ClassPrecision(field, label string) (n, correct int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.count(t.classes[pair{field, label}])
}

// ModelPrecision returns the verdicts in the window for one model (its id;
// see Observe) on one field, every class together, and how many were
// correct.
func (t *Tracker) ModelPrecision(modelID, field string) (n, correct int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.count(t.models[pair{modelID, field}])
}

func (t *Tracker) count(r *ring) (n, correct int) {
	if r == nil {
		return 0, 0
	}
	cutoff := t.cutoff()
	for _, e := range r.buf {
		if !cutoff.IsZero() && e.at.Before(cutoff) {
			continue
		}
		n++
		if e.correct {
			correct++
		}
	}
	return n, correct
}

func (t *Tracker) cutoff() time.Time {
	if t.o.MaxAge < 0 {
		return time.Time{}
	}
	return t.o.Now().Add(-t.o.MaxAge)
}

// Snapshot returns every class with verdicts in the window, sorted by
// field and label.
func (t *Tracker) Snapshot() []ClassStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]ClassStats, 0, len(t.classes))
	for k, r := range t.classes {
		n, c := t.count(r)
		if n == 0 {
			continue
		}
		lo, hi := Wilson(c, n, t.o.Z)
		out = append(out, ClassStats{Field: k.a, Label: k.b, N: n, Correct: c, Precision: float64(c) / float64(n), Lower: lo, Upper: hi})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Field != out[j].Field {
			return out[i].Field < out[j].Field
		}
		return out[i].Label < out[j].Label
	})
	return out
}

// ModelSnapshot returns every (model, field) with verdicts in the window,
// sorted by model and field.
func (t *Tracker) ModelSnapshot() []ModelStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]ModelStats, 0, len(t.models))
	for k, r := range t.models {
		n, c := t.count(r)
		if n == 0 {
			continue
		}
		lo, hi := Wilson(c, n, t.o.Z)
		out = append(out, ModelStats{ModelID: k.a, Field: k.b, N: n, Correct: c, Precision: float64(c) / float64(n), Lower: lo, Upper: hi})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].ModelID != out[j].ModelID {
			return out[i].ModelID < out[j].ModelID
		}
		return out[i].Field < out[j].Field
	})
	return out
}

// Ignored is how many outcomes carried feedback that could not be counted
// (no field, unknown verdict).
func (t *Tracker) Ignored() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.ignored
}

type entry struct {
	at      time.Time
	correct bool
}

// ring holds the latest verdicts of one key, oldest first once full.
type ring struct {
	buf  []entry
	next int // where the next entry goes once len(buf) == cap
}

func (r *ring) push(e entry, size int) {
	if len(r.buf) < size {
		r.buf = append(r.buf, e)
		return
	}
	r.buf[r.next] = e
	r.next = (r.next + 1) % size
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
