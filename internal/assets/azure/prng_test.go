package azure

import "math/rand/v2"

// prngReader is an endless stream of pseudo-random bytes for tests.
type prngReader struct{ r *rand.Rand }

func (p *prngReader) Read(b []byte) (int, error) {
	for i := 0; i < len(b); {
		v := p.r.Uint64()
		for k := 0; k < 8 && i < len(b); k++ {
			b[i] = byte(v >> (8 * k))
			i++
		}
	}
	return len(b), nil
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed)) }
