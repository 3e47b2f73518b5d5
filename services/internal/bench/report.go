package bench

import "time"

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
	Batch1PerSec    float64 `json:"batch_1worker_per_sec"`   // PredictBatch, 1 worker
	BatchAllPerSec  float64 `json:"batch_all_per_sec"`       // PredictBatch, GOMAXPROCS workers
	BatchPerCoreSec float64 `json:"batch_per_core_per_sec"`  // BatchAll / GOMAXPROCS
	SklearnPredUs   float64 `json:"sklearn_predict_us"`      // best README batch figure
	SklearnTrainUs  float64 `json:"sklearn_train_us"`        // best README figure
	FieldsTrained   string  `json:"fields_trained"`          // fields in the model
	ModelID         string  `json:"model_id"`                // first 12 hex digits
	Workers         int     `json:"train_workers,omitempty"` // goroutines of training
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
	Runs         []PipeRun  `json:"runs"`
}

// RawCeiling is JetStream alone: publish N messages and consume them with
// explicit acks, no processing, through the same embedded server.
type RawCeiling struct {
	Messages     int     `json:"messages"`
	AsyncPerSec  float64 `json:"async_per_sec"` // async publish (256 in flight) + pull consumer, concurrently
	SyncPerSec   float64 `json:"sync_per_sec"`  // one publish in flight (as each stage publishes) + pull consumer
	AsyncSeconds float64 `json:"async_seconds"`
	SyncSeconds  float64 `json:"sync_seconds"`
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
	// CPUMsPerTicket is this process's CPU time (user+system) over the run
	// per ticket: stages, NATS server and simulator together.
	CPUMsPerTicket float64 `json:"cpu_ms_per_ticket"`
	GroupAcc       float64 `json:"group_accuracy"` // applied or predicted group against the simulator's truth
	TimedOut       bool    `json:"timed_out,omitempty"`
	Description    string  `json:"description"`
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
