package wire

import (
	"fmt"
	"net/netip"

	"github.com/quicksand-go/quicksand/engine"
)

// policyFrom reads a network policy map {allow_out, deny_out, hosts}. The
// entries themselves are checked by the engine (their errors name them).
func policyFrom(f *fields) (*engine.NetworkPolicy, error) {
	p := &engine.NetworkPolicy{}
	if err := f.strList("allow_out", &p.AllowOut); err != nil {
		return nil, err
	}
	if err := f.strList("deny_out", &p.DenyOut); err != nil {
		return nil, err
	}
	if v, ok := f.get("hosts"); ok {
		m, isMap := v.(map[string]any)
		if !isMap {
			return nil, f.fail("hosts", "must be a map of names to arrays of addresses, not %s", typeName(v))
		}
		p.Hosts = make(map[string][]netip.Addr, len(m))
		for name, item := range m {
			key := fmt.Sprintf("hosts.%s", name)
			list, isList := item.([]any)
			if !isList {
				return nil, f.fail(key, "must be an array of address strings, not %s", typeName(item))
			}
			for i, a := range list {
				s, isStr := a.(string)
				if !isStr {
					return nil, f.fail(fmt.Sprintf("%s[%d]", key, i), "must be a string, not %s", typeName(a))
				}
				addr, err := netip.ParseAddr(s)
				if err != nil {
					return nil, f.fail(fmt.Sprintf("%s[%d]", key, i), "%q is not an IP address", s)
				}
				p.Hosts[name] = append(p.Hosts[name], addr)
			}
		}
	}
	return p, f.unknown()
}

// networkPolicy reads the config key holding a policy map.
func networkPolicy(f *fields, key string, dst **engine.NetworkPolicy) error {
	v, ok := f.get(key)
	if !ok {
		return nil
	}
	sub, err := f.sub(key, v)
	if err != nil {
		return err
	}
	*dst, err = policyFrom(sub)
	return err
}

// DecodeNetworkPolicy reads qs_sandbox_set_network's policy map; empty
// input (NULL, 0) is no policy: nil.
func DecodeNetworkPolicy(b []byte) (*engine.NetworkPolicy, error) {
	if len(b) == 0 {
		return nil, nil
	}
	f, err := decodeMap(b, "network policy", engine.KindInvalidConfig)
	if err != nil {
		return nil, err
	}
	return policyFrom(f)
}

// EncodeNetworkStats encodes {allowed, dropped, names_allowed,
// names_refused}.
func EncodeNetworkStats(s engine.NetworkStats) []byte {
	return encodeSorted(map[string]any{
		"allowed": s.Allowed, "dropped": s.Dropped,
		"names_allowed": s.NamesAllowed, "names_refused": s.NamesRefused,
	})
}
