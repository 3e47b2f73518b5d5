package bench

import (
	"time"

	"github.com/autotriage/autotriage/services/internal/classify"
)

// Report is everything one run measured; report.json is this struct.
type Report struct {
	Started  time.Time `json:"started"`
	Duration string    `json:"duration"`
	Machine  Machine   `json:"machine"`
	Options  Options   `json:"options"`
	Sections []string  `json:"sections"` // the sections that ran

	Quality  []QualityRow  `json:"quality,omitempty"`
	Sklearn  string        `json:"sklearn_source,omitempty"` // where the scikit-learn figures come from
	Speed    []SpeedRow    `json:"speed,omitempty"`
	HoldMem  *HoldMem      `json:"hold_memory,omitempty"`
	Explain  []ExplainRow  `json:"explain,omitempty"`
	Pipeline *PipelineRep  `json:"pipeline,omitempty"`
	Credits  *CreditsRep   `json:"freshdesk,omitempty"`
	Memory   []ServiceMem  `json:"memory,omitempty"`
	Notes    []string      `json:"notes,omitempty"` // caveats noticed while measuring
	Targets  []TargetCheck `json:"targets"`
}

// QualityRow is one dataset and label: ours and the scikit-learn figures.
type QualityRow struct {
	Dataset  string  `json:"dataset"`
	Label    string  `json:"label"`
	Classes  int     `json:"classes"`
	Train    int     `json:"train"`
	Test     int     `json:"test"`
	Accuracy float64 `json:"accuracy"`
	MacroF1  float64 `json:"macro_f1"`
	ECE      float64 `json:"ece"`
	Cov90    float64 `json:"coverage_at_p90"`
	Cov95    float64 `json:"coverage_at_p95"`
	// Sklearn rows for the same dataset and label.
	Sklearn []SklearnRow `json:"sklearn"`
}

// SklearnRow is a scikit-learn reference figure.
type SklearnRow struct {
	Dataset          string  `json:"dataset"`
	Label            string  `json:"label"`
	Model            string  `json:"model"`
	Accuracy         float64 `json:"accuracy"`
	MacroF1          float64 `json:"macro_f1"`
	TrainUsPerTicket float64 `json:"train_us_per_ticket,omitempty"`
	PredictUsPerTick float64 `json:"predict_us_per_ticket,omitempty"`
	Source           string  `json:"source"` // "datasets/README.md" or "recomputed"
}

// SpeedRow is the speed of the classifier on one dataset.
type SpeedRow struct {
	Dataset         string  `json:"dataset"`
	TrainSeconds    float64 `json:"train_seconds"`
	TrainUsPerTick  float64 `json:"train_us_per_ticket"`
	ModelBytes      int64   `json:"model_bytes"`
	TrainPeakRSS    int64   `json:"train_peak_rss_bytes"` // VmHWM of the training child
	PredictP50Us    float64 `json:"predict_p50_us"`
	PredictP99Us    float64 `json:"predict_p99_us"`
	PredictN        int     `json:"predict_n"`
	Batch1PerSec    float64 `json:"batch_1worker_per_sec"`  // PredictBatch, 1 worker
	BatchAllPerSec  float64 `json:"batch_all_per_sec"`      // PredictBatch, GOMAXPROCS workers
	BatchPerCoreSec float64 `json:"batch_per_core_per_sec"` // BatchAll / GOMAXPROCS
	// OneFitUsPerTick is one fit of the linear SVM (no model selection, no
	// calibration), the work of one scikit-learn fit.
	OneFitUsPerTick float64 `json:"one_fit_train_us_per_ticket,omitempty"`
	SklearnPredUs   float64 `json:"sklearn_predict_us"` // fastest scikit-learn batch figure
	SklearnTrainUs  float64 `json:"sklearn_train_us"`   // fastest scikit-learn training (a LinearSVC fit)
	// SklearnBestTrainUs is the training time of the scikit-learn row with
	// the best macro-F1 (the quality the default training is compared with).
	SklearnBestTrainUs float64 `json:"sklearn_best_f1_train_us,omitempty"`
	// SklearnSource says where the scikit-learn times come from:
	// "recomputed" (this run, this machine) or "datasets/README.md".
	SklearnSource string `json:"sklearn_source,omitempty"`
	FieldsTrained string `json:"fields_trained"`          // fields in the model
	ModelID       string `json:"model_id"`                // first 12 hex digits
	Workers       int    `json:"train_workers,omitempty"` // goroutines of training
}

// ExplainRow is the cost of explanations and similar tickets: per dataset
// with the index over its train split (TrainGrowth: the index's build time
// over the rest of the training), and once at scale (Scale) over the
// 50,000-ticket history the targets are stated for.
type ExplainRow struct {
	Dataset     string  `json:"dataset"`
	History     string  `json:"history"`
	Scale       bool    `json:"scale,omitempty"`
	TrainGrowth float64 `json:"train_growth,omitempty"`
	classify.ExplainReport
}

// HoldMem is the resident memory of a process that loaded the largest model.
type HoldMem struct {
	Dataset     string `json:"dataset"`
	ModelBytes  int64  `json:"model_bytes"`
	BaselineRSS int64  `json:"baseline_rss_bytes"` // the same child before loading
	RSS         int64  `json:"rss_bytes"`          // after loading, GC and 1000 predictions
	HWM         int64  `json:"hwm_bytes"`
}

// PipelineRep is section 3.
type PipelineRep struct {
	Tickets      int        `json:"tickets"`
	PayloadBytes int        `json:"payload_bytes"` // mean TICKETS message size used for the raw ceiling
	Raw          RawCeiling `json:"raw"`
	Ceilings     *Ceilings  `json:"component_ceilings,omitempty"`
	Runs         []PipeRun  `json:"runs"`
}

// Ceilings is the per-ticket work every pipeline on this machine must do,
// each component measured alone with every core (median of 3 passes), and
// the upper bound they allow together. The components share the same cores
// in a pipeline, so their per-ticket times add:
// BoundPerSec = 1 / (1/HTTPPerSec + 1/InferencePerSec + 1/JSPerSec). That
// holds when each component saturated the cores alone (CPU share near 1);
// one that did not (latency-bound) makes the bound pessimistic for it. The
// writer's KV ledger operations are not included: the bound is optimistic.
type Ceilings struct {
	Tickets int `json:"tickets"` // per pass
	Cores   int `json:"cores"`   // GOMAXPROCS: what every component had alone
	// Simulator writes: the writer's calls per ticket (a note POST when
	// notes are on, then the PUT) through the real client and transport
	// against a fresh simulator, from the writer's default concurrency.
	HTTPWorkers        int     `json:"http_workers"`
	HTTPCallsPerTicket int     `json:"http_calls_per_ticket"`
	HTTPPerSec         float64 `json:"http_tickets_per_sec"`
	HTTPCPUShare       float64 `json:"http_cpu_share"` // process CPU / (wall × GOMAXPROCS)
	HTTPCPUMsPerTicket float64 `json:"http_cpu_ms_per_ticket"`
	// Inference: triage.Predictor.Predict per ticket, GOMAXPROCS workers.
	InferenceWorkers        int     `json:"inference_workers"`
	InferencePerSec         float64 `json:"inference_tickets_per_sec"`
	InferenceCPUShare       float64 `json:"inference_cpu_share"`
	InferenceCPUMsPerTicket float64 `json:"inference_cpu_ms_per_ticket"`
	// JetStream: the raw async ceiling divided by the messages per ticket
	// (each counted as a publish plus a consume with ack).
	JSMsgsPerTicket  int     `json:"js_msgs_per_ticket"`
	JSPerSec         float64 `json:"js_tickets_per_sec"`
	JSCPUShare       float64 `json:"js_cpu_share"`
	JSCPUMsPerTicket float64 `json:"js_cpu_ms_per_ticket"`
	// BoundPerSec is the upper bound in tickets/s; BoundRatioAsync its share
	// of the raw async ceiling (in messages/s, as the 25% target reads).
	BoundPerSec     float64 `json:"bound_tickets_per_sec"`
	BoundRatioAsync float64 `json:"bound_ratio_to_async_ceiling"`
	// BoundCPUPerSec is the same bound from CPU time instead of rates:
	// GOMAXPROCS cores over the components' CPU time per ticket. It does not
	// count a latency-bound component's idle cores against it.
	BoundCPUPerSec float64 `json:"bound_by_cpu_tickets_per_sec"`
}

// CPUMsPerTicket is the components' CPU time per ticket added up.
func (c *Ceilings) CPUMsPerTicket() float64 {
	return c.HTTPCPUMsPerTicket + c.InferenceCPUMsPerTicket + c.JSCPUMsPerTicket
}

// RawCeiling is JetStream alone: publish N messages and consume them with
// explicit acks, no processing, through the same embedded server.
type RawCeiling struct {
	Messages     int     `json:"messages"`
	AsyncPerSec  float64 `json:"async_per_sec"` // async publish (256 in flight) + pull consumer, concurrently
	SyncPerSec   float64 `json:"sync_per_sec"`  // one publish in flight (as each stage publishes) + pull consumer
	AsyncSeconds float64 `json:"async_seconds"`
	SyncSeconds  float64 `json:"sync_seconds"`
	// Process CPU over the median async pass: its share of every core, and
	// per message.
	AsyncCPUShare    float64 `json:"async_cpu_share"`
	AsyncCPUMsPerMsg float64 `json:"async_cpu_ms_per_msg"`
}

// PipeRun is one pass of tickets through fetcher, classifier and writer.
type PipeRun struct {
	Name       string  `json:"name"`
	Ingest     string  `json:"ingest"` // "polling" or "webhooks"
	Arrival    string  `json:"arrival"`
	Replicas   int     `json:"classifier_replicas"`
	Tickets    int     `json:"tickets"`
	Done       int     `json:"done"`
	Applied    int     `json:"applied"` // outcomes that set at least one field
	Seconds    float64 `json:"seconds"`
	PerSec     float64 `json:"per_sec"`
	P50Ms      float64 `json:"p50_ms"`
	P99Ms      float64 `json:"p99_ms"`
	HookP50Ms  float64 `json:"webhook_p50_ms,omitempty"` // webhook received -> outcome
	HookP99Ms  float64 `json:"webhook_p99_ms,omitempty"`
	RatioAsync float64 `json:"ratio_to_async_ceiling"`
	RatioSync  float64 `json:"ratio_to_sync_ceiling"`
	Credits    int64   `json:"credits"`
	// ShareOfBound is tickets/s over the component ceilings' upper bound
	// (backlog runs only): how much of what is reachable here the run got.
	ShareOfBound float64 `json:"share_of_bound,omitempty"`
	// CPUMsPerTicket is this process's CPU time (user+system) over the run
	// per ticket: stages, NATS server and simulator together.
	CPUMsPerTicket float64 `json:"cpu_ms_per_ticket"`
	// CPURatio is CPUMsPerTicket over the component ceilings' CPU time per
	// ticket added up (Ceilings.CPUMsPerTicket): how much CPU the pipeline
	// spends beyond the work every ticket needs (backlog runs only; issue
	// 16's target is at most 1.5).
	CPURatio    float64 `json:"cpu_ratio_to_ceilings,omitempty"`
	GroupAcc    float64 `json:"group_accuracy"` // applied or predicted group against the simulator's truth
	TimedOut    bool    `json:"timed_out,omitempty"`
	Description string  `json:"description"`
}

// CreditsRep is section 4.
type CreditsRep struct {
	TimeScale float64     `json:"time_scale"`
	Runs      []CreditRun `json:"runs"`
}

// CreditRun is one polling run against the simulator's rate limiter.
type CreditRun struct {
	Name          string           `json:"name"`
	Plan          string           `json:"plan"`
	Notes         bool             `json:"notes"`
	Tickets       int              `json:"tickets"`
	Done          int              `json:"done"`
	NotesWritten  int              `json:"notes_written"`
	Credits       int64            `json:"credits"`
	PerTicket     float64          `json:"credits_per_ticket"`
	Target        float64          `json:"target"`
	Endpoints     map[string]int64 `json:"credits_by_endpoint"`
	SimMinutes    float64          `json:"sim_minutes"`
	BudgetPerMin  int              `json:"budget_per_min,omitempty"`
	BudgetShare   float64          `json:"budget_share,omitempty"` // credits / (budget × simulated minutes)
	PeakMinute    int64            `json:"peak_minute_credits,omitempty"`
	RateLimited   int64            `json:"rate_limited"` // 429 responses
	ArrivalPerMin float64          `json:"arrival_per_sim_min"`
	TimedOut      bool             `json:"timed_out,omitempty"`
}

// ServiceMem is section 5: one service binary, idle and under load.
type ServiceMem struct {
	Service   string `json:"service"`
	IdleRSS   int64  `json:"idle_rss_bytes"`
	LoadRSS   int64  `json:"load_rss_bytes"` // highest VmRSS sampled under load
	HWM       int64  `json:"hwm_bytes"`      // VmHWM at the end
	BinaryLen int64  `json:"binary_bytes"`
}

// TargetCheck is one target and whether this run met it.
type TargetCheck struct {
	Target string `json:"target"`
	Value  string `json:"value"`
	Met    bool   `json:"met"`
}
