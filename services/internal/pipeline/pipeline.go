// Package pipeline is autotriage's only door to NATS JetStream. A Conn is
// one connection handing out a type per role a process plays on it: the
// Declarer ensures the topology (streams, durable consumers, KV buckets,
// the model object store) declared once in this package; the Publisher
// stores a message and waits for its ack, deduplicated by message id; the
// Consumer runs a handler on a durable consumer through a chain of
// middleware (panic recovery, heartbeats, handler time, redelivery delays,
// dead-lettering); the DeadLetterer copies failures to the DLQ; Stores
// opens KV buckets and object stores; Reader, Stats and Admin are the
// operator's reading, reporting and deleting tools. Nothing outside this
// package imports jetstream.
package pipeline

import (
	"fmt"
	"strings"
)

// Stream names.
const (
	StreamTickets     = "TICKETS"
	StreamPredictions = "PREDICTIONS"
	StreamOutcomes    = "OUTCOMES"
	StreamDLQ         = "DLQ"
)

// Durable consumer names; every replica of a stage binds to the same one.
const (
	ConsumerClassifier = "classifier"
	ConsumerWriter     = "writer"
)

// KV buckets and the object store.
const (
	BucketFetcher = "autotriage-fetcher" // polling cursors and the poller lease
	BucketWriter  = "autotriage-writer"  // idempotency records and applied versions
	BucketModels  = "autotriage-models"  // which model is promoted
	// BucketPolicy holds the live triage policy (key "policy") with its
	// history, the trainer's cursor and training requests.
	BucketPolicy = "autotriage-policy"
	ObjectModels = "autotriage-models" // model artifacts
)

// Header names on DLQ messages (and, for the original ones, on every message).
const (
	HeaderStage          = "Autotriage-Stage"
	HeaderError          = "Autotriage-Error"
	HeaderDeliveries     = "Autotriage-Deliveries"
	HeaderOriginalStream = "Autotriage-Original-Stream"
	HeaderOriginalSeq    = "Autotriage-Original-Seq"
	HeaderOriginalSubj   = "Autotriage-Original-Subject"
	HeaderFailedAt       = "Autotriage-Failed-At"
	// HeaderAttempt names the operator's run that re-published a message
	// (dlq-retry:<run>, replay:<run>): a new attempt at the same work, whose
	// results supersede the earlier attempt's instead of being dropped as
	// its duplicates.
	HeaderAttempt       = "Autotriage-Attempt"
	HeaderContentType   = "Content-Type"
	ContentTypeProtobuf = "application/protobuf"
)

// Subject tokens must not contain the separators NATS reserves.
var tokenReplacer = strings.NewReplacer(".", "_", "*", "_", ">", "_", " ", "_", "\t", "_", "\n", "_", "\r", "_")

// Token makes s safe as a single subject token.
func Token(s string) string {
	if s == "" {
		return "_"
	}
	return tokenReplacer.Replace(s)
}

// TicketSubject is where the fetcher publishes a ticket version.
func TicketSubject(system, account string, id int64) string {
	return fmt.Sprintf("tickets.%s.%s.%d", Token(system), Token(account), id)
}

// PredictionSubject is where the classifier publishes a prediction.
func PredictionSubject(system, account string, id int64) string {
	return fmt.Sprintf("predictions.%s.%s.%d", Token(system), Token(account), id)
}

// OutcomeSubject is where the writer publishes an outcome.
func OutcomeSubject(system, account string, id int64) string {
	return fmt.Sprintf("outcomes.%s.%s.%d", Token(system), Token(account), id)
}

// DLQSubject is where a stage dead-letters a message about an account.
func DLQSubject(stage, account string) string {
	return "dlq." + Token(stage) + "." + Token(account)
}

// accountOf extracts the account token of a tickets/predictions/outcomes subject.
func accountOf(subject string) string {
	parts := strings.Split(subject, ".")
	if len(parts) >= 3 {
		return parts[2]
	}
	return "_"
}
