// Package natsauth is the broker's side of autotriage's least privilege: the
// NATS permissions of each role (pipeline.Roles), derived from what each
// stage declares it uses (pipeline.StageUses), rendered as the authorization
// block of a NATS server configuration. The shipped configurations
// (deploy/nats, deploy/k8s) are this package's output, checked by a test,
// and the tests run the embedded server with the same text, so what is
// tested is what ships.
package natsauth

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/autotriage/autotriage/services/internal/pipeline"
)

// Account is the NATS account autotriage's users live in. Its own account
// keeps its subjects and JetStream assets apart from anything else on a
// shared broker.
const Account = "AUTOTRIAGE"

// Permissions are the subjects a role may publish and subscribe to; deny
// wins over allow.
type Permissions struct {
	PublishAllow, PublishDeny     []string
	SubscribeAllow, SubscribeDeny []string
}

const api = "$JS.API."

// For returns the permissions of a role, or an error for an unknown one.
func For(role string) (Permissions, error) {
	switch role {
	case pipeline.RoleAdmin:
		return Permissions{PublishAllow: []string{">"}, SubscribeAllow: []string{">"}}, nil
	case pipeline.RoleMonitor:
		return monitor(), nil
	}
	u, ok := pipeline.StageUses(role)
	if !ok {
		return Permissions{}, fmt.Errorf("unknown broker role %q (roles: %s)", role, strings.Join(pipeline.Roles(), ", "))
	}
	return stage(role, u), nil
}

// stage grants exactly what u declares.
func stage(role string, u pipeline.Uses) Permissions {
	var p Permissions
	allow := func(s ...string) { p.PublishAllow = append(p.PublishAllow, s...) }
	allow(api + "INFO")
	allow(u.Publish...)
	for _, s := range u.Streams {
		allow(api+"STREAM.INFO."+s, api+"STREAM.CREATE."+s)
	}
	for _, d := range u.Consumes {
		// Bind, create when missing, pull and acknowledge its own durable;
		// read single messages of its stream (a dead-lettered message is
		// copied from there).
		allow(api+"CONSUMER.INFO."+d.Stream+"."+d.Durable,
			api+"CONSUMER.CREATE."+d.Stream+"."+d.Durable,
			api+"CONSUMER.CREATE."+d.Stream+"."+d.Durable+".>",
			api+"CONSUMER.MSG.NEXT."+d.Stream+"."+d.Durable,
			"$JS.ACK."+d.Stream+"."+d.Durable+".>",
			api+"STREAM.MSG.GET."+d.Stream,
			api+"DIRECT.GET."+d.Stream,
			api+"DIRECT.GET."+d.Stream+".>")
		p.SubscribeAllow = append(p.SubscribeAllow, "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES."+d.Stream+"."+d.Durable)
	}
	for _, b := range u.WriteBuckets {
		allow("$KV." + b + ".>")
	}
	read := slices.Clone(u.ReadBuckets)
	for _, k := range u.WriteKeys {
		allow("$KV." + k.Bucket + "." + k.Prefix + ".>")
		read = append(read, k.Bucket)
	}
	for _, b := range union(union(nil, read), u.WriteBuckets) {
		allow(readStream(pipeline.KVStream(b))...)
		allow(api + "STREAM.CREATE." + pipeline.KVStream(b))
	}
	for _, o := range u.ReadObjects {
		allow(readStream(pipeline.ObjectStream(o))...)
		allow(api + "STREAM.CREATE." + pipeline.ObjectStream(o))
	}
	p.PublishDeny = durableDeny(role)
	p.SubscribeAllow = append(p.SubscribeAllow, pipeline.InboxPrefix(role)+".>")
	return p
}

// readStream is what reading a KV bucket or an object store takes: its
// info, single and last-per-subject messages, and the ephemeral ordered
// consumers of a watch or a download (created, pulled or pushed with flow
// control, deleted when done).
func readStream(s string) []string {
	return []string{
		api + "STREAM.INFO." + s,
		api + "STREAM.MSG.GET." + s,
		api + "DIRECT.GET." + s,
		api + "DIRECT.GET." + s + ".>",
		api + "CONSUMER.CREATE." + s,
		api + "CONSUMER.CREATE." + s + ".>",
		api + "CONSUMER.INFO." + s + ".*",
		api + "CONSUMER.MSG.NEXT." + s + ".*",
		api + "CONSUMER.DELETE." + s + ".*",
		"$JS.FC." + s + ".>",
	}
}

// monitor reads everything and changes nothing: no work subjects, no KV
// writes, no stream or durable changes. Its ephemeral consumers (ordered
// reads of a stream) are the only thing it creates, and they vanish when
// idle.
func monitor() Permissions {
	return Permissions{
		PublishAllow: []string{
			api + "INFO",
			api + "STREAM.NAMES", api + "STREAM.LIST",
			api + "STREAM.INFO.*",
			api + "STREAM.MSG.GET.*",
			api + "DIRECT.GET.*", api + "DIRECT.GET.*.>",
			api + "CONSUMER.NAMES.*", api + "CONSUMER.LIST.*",
			api + "CONSUMER.INFO.*.*",
			api + "CONSUMER.CREATE.*", api + "CONSUMER.CREATE.*.>",
			api + "CONSUMER.MSG.NEXT.*.*",
			api + "CONSUMER.DELETE.*.*",
			"$JS.FC.>",
		},
		PublishDeny:    durableDeny(pipeline.RoleMonitor),
		SubscribeAllow: []string{pipeline.InboxPrefix(pipeline.RoleMonitor) + ".>"},
	}
}

// durableDeny keeps every role but the owner away from the pipeline's
// durable consumers: creating, changing or deleting one (which would move
// or reset its position), pulling from it (stealing its messages) or
// acknowledging for it. The legacy durable-create subject is closed to all.
func durableDeny(role string) []string {
	deny := []string{api + "CONSUMER.DURABLE.CREATE.>"}
	for _, d := range pipeline.Durables() {
		if stageOwns(role, d) {
			continue
		}
		deny = append(deny,
			api+"CONSUMER.CREATE.*."+d.Durable,
			api+"CONSUMER.CREATE.*."+d.Durable+".>",
			api+"CONSUMER.DELETE.*."+d.Durable,
			api+"CONSUMER.MSG.NEXT.*."+d.Durable,
			"$JS.ACK.*."+d.Durable+".>")
	}
	return deny
}

func stageOwns(role string, d pipeline.DurableRef) bool {
	u, ok := pipeline.StageUses(role)
	return ok && slices.Contains(u.Consumes, d)
}

func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, s := range b {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}
