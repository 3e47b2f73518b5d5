//go:build e2e

package e2e

import (
	"testing"
	"time"
)

// allImages are what a deployment needs; the CLI image is the trainer.
var allImages = []string{"nats", "fetcher", "classifier", "writer", "freshdesk-sim", "cli"}

// TestSingleNode runs the docker-compose topology (one NATS node with
// JetStream) and takes it through failures one after another. The stack is
// shared by the subtests to keep the suite short; each subtest sends its own
// batch of tickets and checks that batch completely, and they run in order.
// TestSingleNode runs the compose topology with the broker on mutual TLS
// (docker-compose.tls.yml): every stage, the trainer and the test itself
// connect with the CA, a client certificate and their own NKey.
func TestSingleNode(t *testing.T) {
	requireImages(t, allImages...)
	s := newStack(t, stackConfig{tls: true})

	t.Run("TicketsFlowEndToEnd", func(t *testing.T) {
		s.t = t
		ids := s.arrive(20, 10)
		s.waitArrived(ids, time.Minute)
		s.waitOutcomes(ids, 2*time.Minute)
	})

	t.Run("ClassifierKilledMidFlow", func(t *testing.T) {
		s.t = t
		ids := s.arrive(60, 10)
		time.Sleep(2 * time.Second) // the classifier is busy with the batch
		s.kill(s.stages["classifier"][0])
		t.Log("classifier killed (SIGKILL) mid-flow")
		s.waitArrived(ids, time.Minute)
		time.Sleep(3 * time.Second)
		s.start(s.stages["classifier"][0])
		t.Log("classifier restarted")
		s.waitOutcomes(ids, 2*time.Minute)
	})

	t.Run("NATSDown30s", func(t *testing.T) {
		s.t = t
		ids := s.arrive(40, 2) // 20 s of arrivals, most of them while NATS is down
		time.Sleep(3 * time.Second)
		s.stop(s.nats["nats"], 10*time.Second)
		down := time.Now()
		t.Log("NATS stopped")
		s.waitArrived(ids, time.Minute)
		time.Sleep(30*time.Second - time.Since(down))
		s.start(s.nats["nats"])
		t.Logf("NATS started again after %s", time.Since(down).Round(time.Second))
		s.waitOutcomes(ids, 2*time.Minute)
	})

	t.Run("WriterOutageBacklogDrains", func(t *testing.T) {
		s.t = t
		s.stop(s.stages["writer"][0], 30*time.Second)
		t.Log("writer stopped")
		ids := s.arrive(40, 10)
		s.waitArrived(ids, time.Minute)
		// The classifier goes on: the predictions pile up in PREDICTIONS.
		down := time.Now()
		s.waitPending("writer", uint64(len(ids)), 90*time.Second)
		time.Sleep(20*time.Second - time.Since(down)) // down for a while
		s.start(s.stages["writer"][0])
		t.Log("writer started again: replaying the backlog")
		s.waitOutcomes(ids, 2*time.Minute)
	})
}

// TestClusterNodeLoss runs the 3-node JetStream cluster
// (deploy/docker-compose.cluster.yml: streams at 3 replicas, stages connected
// to all three servers) and stops the node leading TICKETS mid-flow.
func TestClusterNodeLoss(t *testing.T) {
	requireImages(t, allImages...)
	s := newStack(t, stackConfig{cluster: true})

	warm := s.arrive(10, 10)
	s.waitArrived(warm, time.Minute)
	s.waitOutcomes(warm, 2*time.Minute)

	victim := s.streamLeader("TICKETS")
	if _, ok := s.nats[victim]; !ok {
		victim = "nats-1"
	}
	ids := s.arrive(60, 4) // 15 s of arrivals
	time.Sleep(3 * time.Second)
	s.stop(s.nats[victim], 10*time.Second)
	t.Logf("%s (leader of TICKETS) stopped mid-flow", victim)
	s.waitArrived(ids, time.Minute)
	s.waitOutcomes(ids, 2*time.Minute)
	t.Logf("every ticket processed with %s down; starting it again", victim)

	s.start(s.nats[victim])
	more := s.arrive(10, 10)
	s.waitArrived(more, time.Minute)
	s.waitOutcomes(more, 2*time.Minute)
}
