package agent

import (
	"bytes"
	"math/rand"
	"testing"
)

// What keptOutput keeps is the input's prefix up to the limit, assembled in
// order, and every slice add handed out keeps its bytes however much is
// added after it.
func TestKeptOutputKeepsAPrefixAndItsSlicesHold(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for _, limit := range []int64{0, 1, 5000, 3 << 20} {
		k := keptOutput{limit: limit}
		var all []byte
		type handed struct{ got, want []byte }
		var given []handed
		for i := 0; i < 400; i++ {
			p := make([]byte, rng.Intn(40<<10))
			rng.Read(p)
			for j := range p {
				p[j] &= 0x7f // ASCII: the cut falls exactly at the limit
			}
			all = append(all, p...)
			if kept := k.add(p); len(kept) > 0 {
				given = append(given, handed{kept, append([]byte(nil), kept...)})
			}
		}
		want := all
		if limit > 0 && int64(len(all)) > limit {
			want = all[:limit]
		}
		if got := k.bytes(); !bytes.Equal(got, want) || k.cut != (len(want) < len(all)) {
			t.Fatalf("limit %d: kept %d bytes (cut %v), want %d of %d", limit, len(got), k.cut, len(want), len(all))
		}
		for i, h := range given {
			if !bytes.Equal(h.got, h.want) {
				t.Fatalf("limit %d: the slice handed out by add %d changed", limit, i)
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
