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
	// WriteKeys lists key spaces it writes in a bucket it otherwise only
	// reads (the bucket counts as read): one owner per record.
	WriteKeys []KeySpace
	// ReadObjects lists the object stores it reads.
	ReadObjects []string
}

// KeySpace is the keys "<Prefix>.>" of a KV bucket.
type KeySpace struct{ Bucket, Prefix string }

// DurableRef names a durable consumer.
type DurableRef struct{ Stream, Durable string }

// allStreams are the pipeline's streams; every stage reports their depth.
var allStreams = []string{StreamTickets, StreamPredictions, StreamOutcomes, StreamDLQ}

// stageUses declares what each stage role uses. Every record has one
// writer: the fetcher writes its own bucket and the seen records of the
// writer's bucket (the newest version it observed) and reads the writer's
// applied records (override detection, own versions); the writer writes its
// applied and catalog records and reads the seen records. Neither writes a
// record of the other, so they can be upgraded one at a time.
var stageUses = map[string]Uses{
	RoleFetcher: {
		Publish:      []string{"tickets.>", "outcomes.>", "dlq." + RoleFetcher + ".>"},
		Streams:      allStreams,
		WriteBuckets: []string{BucketFetcher},
		WriteKeys:    []KeySpace{{BucketWriter, "seen"}},
	},
	RoleClassifier: {
		Publish:     []string{"predictions.>", "dlq." + RoleClassifier + ".>"},
		Streams:     allStreams,
		Consumes:    []DurableRef{{StreamTickets, ConsumerClassifier}},
		ReadBuckets: []string{BucketModels, BucketPolicy},
		ReadObjects: []string{ObjectModels},
	},
	RoleWriter: {
		Publish:   []string{"outcomes.>", "dlq." + RoleWriter + ".>"},
		Streams:   allStreams,
		Consumes:  []DurableRef{{StreamPredictions, ConsumerWriter}},
		WriteKeys: []KeySpace{{BucketWriter, "applied"}, {BucketWriter, "catalog"}},
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
	read := slices.Clone(u.ReadBuckets)
	for _, k := range u.WriteKeys {
		read = append(read, k.Bucket)
	}
	for _, b := range read {
		if !slices.Contains(out, b) {
			out = append(out, b)
		}
	}
	return out
}
