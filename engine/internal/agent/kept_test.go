package agent

import (
	"bytes"
	"math/rand"
	"testing"
)

// What keptOutput keeps is the input's prefix up to the limit, assembled in
// order, on Go's heap or in memory of the caller's; once moved it takes
// nothing more.
func TestKeptOutputKeepsAPrefix(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for _, limit := range []int64{0, 1, 5000, 3 << 20} {
		for _, caller := range []bool{false, true} {
			var out [3]keptOutput
			out[Stdout].limit, out[Stderr].limit = limit, limit
			var all [3][]byte
			for i := 0; i < 400; i++ {
				p := make([]byte, rng.Intn(40<<10))
				rng.Read(p)
				for j := range p {
					p[j] &= 0x7f // ASCII: the cut falls exactly at the limit
				}
				s := Stream(1 + i%2)
				all[s] = append(all[s], p...)
				out[s].add(p)
			}
			var alloc Alloc
			if caller {
				alloc = func(o, e int) ([]byte, []byte) { return make([]byte, o), make([]byte, e) }
			}
			var got [3][]byte
			got[Stdout], got[Stderr] = moveOutputs(&out, alloc)
			for _, s := range []Stream{Stdout, Stderr} {
				want := all[s]
				if limit > 0 && int64(len(want)) > limit {
					want = want[:limit]
				}
				if !bytes.Equal(got[s], want) || out[s].cut != (len(want) < len(all[s])) {
					t.Fatalf("limit %d, %v: kept %d bytes (cut %v), want %d of %d", limit, s, len(got[s]), out[s].cut, len(want), len(all[s]))
				}
				out[s].add([]byte("more"))
				if out[s].len() != 0 || out[s].blocks != nil {
					t.Fatalf("limit %d, %v: added after it was moved", limit, s)
				}
			}
		}
	}
}

// The limit never cuts a character in half.
func TestKeptOutputCutsBetweenCharacters(t *testing.T) {
	k := keptOutput{limit: 4}
	k.add([]byte("ab"))
	k.add([]byte("cé")) // é is 2 bytes: only "c" fits whole
	k.add([]byte("d"))
	if got := string(k.bytes()); got != "abc" || !k.cut {
		t.Fatalf("kept %q, cut %v", got, k.cut)
	}
}
