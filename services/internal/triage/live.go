package triage

import "sync/atomic"

// Live is the policy in force, replaced while predictors use it: the
// classifier follows the policy document in KV and stores every new
// version here, and every prediction reads the current one, so a change
// applies from the next ticket on without a restart. Safe for concurrent
// use; the Policy it returns is shared and must not be modified.
type Live struct {
	p atomic.Pointer[Policy]
}

// NewLive starts with p.
func NewLive(p Policy) *Live {
	l := &Live{}
	l.Set(p)
	return l
}

// Policy returns the policy in force.
func (l *Live) Policy() Policy { return *l.p.Load() }

// Set replaces the policy in force; the caller must not modify p after.
func (l *Live) Set(p Policy) { l.p.Store(&p) }
