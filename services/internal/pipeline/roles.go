package pipeline

import "slices"

// Broker roles. Each process connects as one of them; the role decides the
// part of the topology the process ensures at start (Uses) and, through
// package natsauth, what its broker identity is permitted to do. The two are
// the same declaration, so a stage can never need a permission its identity
// lacks without a test noticing.
const (
	RoleFetcher    = "fetcher"
	RoleClassifier = "classifier"
	RoleWriter     = "writer"
	// RoleAdmin is the trainer and the operator's CLI: everything in the
	// account, including promoting models, purging and deleting.
	RoleAdmin = "admin"
	// RoleMonitor reads streams, consumers, KV and models, and changes nothing.
	RoleMonitor = "monitor"
)

// Roles lists every role, in a stable order.
func Roles() []string {
	return []string{RoleFetcher, RoleClassifier, RoleWriter, RoleAdmin, RoleMonitor}
}

// Uses is what a stage works with.
type Uses struct {
	// Publish lists the subjects it publishes work to (patterns).
	Publish []string
	// Streams lists the streams it reads the state of (lag, DLQ depth) and
	// creates when missing.
	Streams []string
	// Consumes lists the durable consumers it binds, with the stream each
	// reads.
	Consumes []DurableRef
	// ReadBuckets and WriteBuckets are the KV buckets it reads (get,
	// watch) or also writes (put, create, update, delete of its keys).
	ReadBuckets  []string
	WriteBuckets []string
	// ReadObjects lists the object stores it reads.
	ReadObjects []string
}

// DurableRef names a durable consumer.
type DurableRef struct{ Stream, Durable string }

// allStreams are the pipeline's streams; every stage reports their depth.
var allStreams = []string{StreamTickets, StreamPredictions, StreamOutcomes, StreamDLQ}

// stageUses declares what each stage role uses. The fetcher reads and
// updates the writer's applied records (override detection) and the writer
// reads and updates the fetcher's seen records (the ticket version it saw
// last): the ledger is shared by design.
var stageUses = map[string]Uses{
	RoleFetcher: {
		Publish:      []string{"tickets.>", "outcomes.>", "dlq." + RoleFetcher + ".>"},
		Streams:      allStreams,
		WriteBuckets: []string{BucketFetcher, BucketWriter},
	},
	RoleClassifier: {
		Publish:     []string{"predictions.>", "dlq." + RoleClassifier + ".>"},
		Streams:     allStreams,
		Consumes:    []DurableRef{{StreamTickets, ConsumerClassifier}},
		ReadBuckets: []string{BucketModels, BucketPolicy},
		ReadObjects: []string{ObjectModels},
	},
	RoleWriter: {
		Publish:      []string{"outcomes.>", "dlq." + RoleWriter + ".>"},
		Streams:      allStreams,
		Consumes:     []DurableRef{{StreamPredictions, ConsumerWriter}},
		WriteBuckets: []string{BucketWriter, BucketFetcher},
	},
}

// StageUses returns what a stage role uses; ok is false for the admin, the
// monitor and unknown roles, which are not stages.
func StageUses(role string) (Uses, bool) {
	u, ok := stageUses[role]
	return u, ok
}

// Durables lists every durable consumer of the pipeline.
func Durables() []DurableRef {
	out := make([]DurableRef, 0, len(durableConsumers))
	for _, dc := range durableConsumers {
		out = append(out, DurableRef{dc.stream, dc.durable})
	}
	return out
}

// InboxPrefix is where a role's replies arrive. A prefix per role lets each
// identity subscribe to its own replies only, so one stage cannot read the
// answers (KV values, JetStream API replies) meant for another.
func InboxPrefix(role string) string {
	if role == "" {
		return "_INBOX"
	}
	return "_INBOX_" + Token(role)
}

// KVStream and ObjectStream name the streams behind a KV bucket and an
// object store.
func KVStream(bucket string) string     { return "KV_" + bucket }
func ObjectStream(bucket string) string { return "OBJ_" + bucket }

// isStage reports whether role ensures only its own part of the topology.
func isStage(role string) bool {
	_, ok := stageUses[role]
	return ok
}

func (u Uses) bucketsAll() []string {
	out := slices.Clone(u.WriteBuckets)
	for _, b := range u.ReadBuckets {
		if !slices.Contains(out, b) {
			out = append(out, b)
		}
	}
	return out
}
