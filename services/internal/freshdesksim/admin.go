package freshdesksim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// The admin API lives under /_sim/ and needs no Freshdesk auth. Bodies are
// JSON and bounded like the Freshdesk API's. See freshdesk-sim/README.md.

func (s *Sim) serveAdmin(w http.ResponseWriter, r *http.Request) {
	s.admin.ServeHTTP(w, r)
}

func adminJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeJSON(w, status, b)
}

func adminErr(w http.ResponseWriter, status int, err error) {
	adminJSON(w, status, map[string]string{"error": err.Error()})
}

func readAdmin(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		adminErr(w, http.StatusBadRequest, fmt.Errorf("invalid body: %w", err))
		return false
	}
	return true
}

func pathID(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		adminErr(w, http.StatusBadRequest, fmt.Errorf("invalid id: %w", err))
		return 0, false
	}
	return id, true
}

type adminFault struct {
	ErrorRate float64 `json:"error_rate"`
	Status    int     `json:"status"`
	Latency   string  `json:"latency"` // Go duration, e.g. "250ms"
	ResetRate float64 `json:"reset_rate"`
	Burst     int     `json:"burst"`
}

func (s *Sim) adminMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /_sim/healthz", s.adminHealth)
	mux.HandleFunc("POST /_sim/generate", s.adminGenerate)
	mux.HandleFunc("POST /_sim/dataset", s.adminDataset)
	mux.HandleFunc("POST /_sim/tickets", s.adminAddTicket)
	mux.HandleFunc("GET /_sim/tickets/{id}", s.adminTicket)
	mux.HandleFunc("POST /_sim/tickets/{id}/agent_update", s.adminAgentUpdate)
	mux.HandleFunc("POST /_sim/tickets/{id}/spam", s.adminSpam)
	mux.HandleFunc("GET /_sim/stats", s.adminStats)
	mux.HandleFunc("POST /_sim/stats/reset", s.adminResetStats)
	mux.HandleFunc("GET /_sim/faults", s.adminFaults)
	mux.HandleFunc("PUT /_sim/faults/{endpoint}", s.adminSetFault)
	mux.HandleFunc("DELETE /_sim/faults/{endpoint}", s.adminClearFault)
	return mux
}

func (s *Sim) adminHealth(w http.ResponseWriter, _ *http.Request) {
	adminJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Sim) adminGenerate(w http.ResponseWriter, r *http.Request) {
	var o struct {
		History     int     `json:"history"`
		New         int     `json:"new"`
		HistoryDays int     `json:"history_days"`
		ArrivalRate float64 `json:"arrival_rate"`
		Arrivals    int     `json:"arrivals"`
		EmailShare  float64 `json:"email_share"`
	}
	if !readAdmin(w, r, &o) {
		return
	}
	if err := s.Generate(GenerateOptions(o)); err != nil {
		adminErr(w, http.StatusBadRequest, err)
		return
	}
	adminJSON(w, http.StatusOK, map[string]int{"tickets": len(s.TicketIDs())})
}

func (s *Sim) adminDataset(w http.ResponseWriter, r *http.Request) {
	var o struct {
		Dir          string  `json:"dir"`
		HistoryLimit int     `json:"history_limit"`
		NewLimit     int     `json:"new_limit"`
		Rate         float64 `json:"rate"`
	}
	if !readAdmin(w, r, &o) {
		return
	}
	if err := s.LoadDataset(o.Dir, DatasetOptions{HistoryLimit: o.HistoryLimit, NewLimit: o.NewLimit, Rate: o.Rate}); err != nil {
		adminErr(w, http.StatusBadRequest, err)
		return
	}
	adminJSON(w, http.StatusOK, map[string]int{"tickets": len(s.TicketIDs())})
}

func (s *Sim) adminAddTicket(w http.ResponseWriter, r *http.Request) {
	var o struct {
		Subject      string         `json:"subject"`
		Description  string         `json:"description"`
		Email        string         `json:"email"`
		Name         string         `json:"name"`
		Company      string         `json:"company"`
		Priority     int            `json:"priority"`
		Source       int            `json:"source"`
		Tags         []string       `json:"tags"`
		CustomFields map[string]any `json:"custom_fields"`
		Labels       *Labels        `json:"labels"`
	}
	if !readAdmin(w, r, &o) {
		return
	}
	id, err := s.AddTicket(NewTicket(o))
	if err != nil {
		adminErr(w, http.StatusBadRequest, err)
		return
	}
	adminJSON(w, http.StatusCreated, map[string]int64{"id": id})
}

func (s *Sim) adminTicket(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	s.mu.RLock()
	tk := s.tickets[id]
	s.mu.RUnlock()
	if tk == nil {
		adminErr(w, http.StatusNotFound, ErrNotFound)
		return
	}
	var labels *Labels
	if l, ok := s.TrueLabels(id); ok {
		labels = &l
	}
	adminJSON(w, http.StatusOK, map[string]any{
		"ticket": json.RawMessage(tk.view), "labels": labels, "notes": s.Notes(id),
	})
}

func (s *Sim) adminAgentUpdate(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	var fields map[string]any
	if !readAdmin(w, r, &fields) {
		return
	}
	err := s.AgentUpdate(id, fields)
	var ve *ValidationError
	switch {
	case errors.Is(err, ErrNotFound):
		adminErr(w, http.StatusNotFound, err)
	case errors.As(err, &ve):
		adminJSON(w, http.StatusBadRequest, ve)
	case err != nil:
		adminErr(w, http.StatusBadRequest, err)
	default:
		t, _ := s.Ticket(id)
		adminJSON(w, http.StatusOK, map[string]any{"id": id, "updated_at": t.UpdatedAt})
	}
}

func (s *Sim) adminSpam(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	var o struct {
		Spam    bool `json:"spam"`
		Deleted bool `json:"deleted"`
	}
	if !readAdmin(w, r, &o) {
		return
	}
	if err := s.SetSpam(id, o.Spam, o.Deleted); err != nil {
		adminErr(w, http.StatusNotFound, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Sim) adminStats(w http.ResponseWriter, _ *http.Request) {
	adminJSON(w, http.StatusOK, s.Stats())
}

func (s *Sim) adminResetStats(w http.ResponseWriter, _ *http.Request) {
	s.ResetStats()
	w.WriteHeader(http.StatusNoContent)
}

func (s *Sim) adminFaults(w http.ResponseWriter, _ *http.Request) {
	out := map[string]adminFault{}
	for k, f := range s.Faults() {
		out[k] = adminFault{f.ErrorRate, f.Status, f.Latency.String(), f.ResetRate, f.Burst}
	}
	adminJSON(w, http.StatusOK, out)
}

func (s *Sim) adminSetFault(w http.ResponseWriter, r *http.Request) {
	var o adminFault
	if !readAdmin(w, r, &o) {
		return
	}
	var lat time.Duration
	if o.Latency != "" {
		d, err := time.ParseDuration(o.Latency)
		if err != nil || d < 0 {
			adminErr(w, http.StatusBadRequest, fmt.Errorf("invalid latency %q", o.Latency))
			return
		}
		lat = d
	}
	if o.ErrorRate < 0 || o.ErrorRate > 1 || o.ResetRate < 0 || o.ResetRate > 1 || o.Burst < 0 || (o.Status != 0 && (o.Status < 400 || o.Status > 599)) {
		adminErr(w, http.StatusBadRequest, errors.New("rates must be in [0,1], burst >= 0, status 400-599"))
		return
	}
	s.SetFault(r.PathValue("endpoint"), Fault{ErrorRate: o.ErrorRate, Status: o.Status, Latency: lat, ResetRate: o.ResetRate, Burst: o.Burst})
	w.WriteHeader(http.StatusNoContent)
}

func (s *Sim) adminClearFault(w http.ResponseWriter, r *http.Request) {
	s.SetFault(r.PathValue("endpoint"), Fault{})
	w.WriteHeader(http.StatusNoContent)
}
