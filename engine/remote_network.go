package engine

import (
	"context"
	"net/http"
	"time"

	"github.com/quicksand-go/quicksand/internal/serverapi"
)

// A server's sandbox's network policy and counts (Sandbox.SetNetwork and
// NetworkStats): the server's guard does the work. serverapi's types have
// the engine's fields, so each converts to the other.

// policyBody is the policy as the server takes it (nil: none).
func policyBody(p *NetworkPolicy) *serverapi.NetworkPolicy {
	return (*serverapi.NetworkPolicy)(p)
}

func (r *remoteSandbox) setNetwork(ctx context.Context, policy *NetworkPolicy) error {
	// Checked here first, so that a bad entry is named as locally.
	if _, err := policy.compile(); err != nil {
		return newError(KindInvalidConfig, err, "network policy")
	}
	return r.c.run(ctx, r.alive, "setting the network policy of sandbox "+r.id, fixedBound(time.Minute), func(ctx context.Context) error {
		return r.c.call(ctx, http.MethodPut, route(serverapi.PathNetwork, r.id), nil, policyBody(policy), nil, remoteSmallAnswer)
	})
}

func (r *remoteSandbox) networkStats() (NetworkStats, error) {
	var s serverapi.NetworkStats
	err := r.c.run(context.Background(), r.alive, "reading the network counts of sandbox "+r.id, fixedBound(time.Minute), func(ctx context.Context) error {
		return r.c.call(ctx, http.MethodGet, route(serverapi.PathNetwork, r.id), nil, nil, &s, remoteSmallAnswer)
	})
	return NetworkStats(s), err
}
