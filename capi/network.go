package main

/*
#include "capi.h"
*/
import "C"

import (
	"context"

	"github.com/quicksand-go/quicksand/capi/wire"
	"github.com/quicksand-go/quicksand/engine"
)

// Network policy (include/quicksand.h, "Network policy").

//export qs_sandbox_set_network
func qs_sandbox_set_network(h *C.qs_sandbox, policy *C.uint8_t, policyLen C.size_t, errOut **C.qs_error) C.qs_status {
	return withSandbox(h, errOut, func(sb *engine.Sandbox) error {
		p, err := wire.DecodeNetworkPolicy(goBytes(policy, policyLen))
		if err != nil {
			return err
		}
		return sb.SetNetwork(context.Background(), p)
	})
}

//export qs_sandbox_network_stats
func qs_sandbox_network_stats(h *C.qs_sandbox, stats *C.qs_buffer, errOut **C.qs_error) C.qs_status {
	if stats != nil {
		stats.data, stats.len = nil, 0
	}
	return withSandbox(h, errOut, func(sb *engine.Sandbox) error {
		if stats == nil {
			return invalidHandle("qs_sandbox_network_stats: stats is NULL")
		}
		s, err := sb.NetworkStats()
		if err != nil {
			return err
		}
		setBuffer(stats, wire.EncodeNetworkStats(s))
		return nil
	})
}
