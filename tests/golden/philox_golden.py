#!/usr/bin/env python3
"""Golden values for tests/test_rng.cpp, derived independently of the C++ code.

Philox4x32-10 is written here from its definition (Salmon et al., "Parallel
random numbers: as easy as 1, 2, 3", SC'11) and checked against the published
Random123 known-answer vectors before it is trusted. The Generator's stream is
then re-derived from the documented rules in core/rng.h: block b of seed s is
philox(counter = b as a 128-bit counter with the high 64 bits zero, key = s);
words are consumed in order; uniform() = ((w0 >> 5) * 2^26 + (w1 >> 6)) / 2^53;
normal() = sqrt(-2 ln u1) cos(2 pi u2) with two uniforms.

Run with any python3 (no torch needed); paste the printed literals into the test.
"""
import math

M0, M1 = 0xD2511F53, 0xCD9E8D57
W0, W1 = 0x9E3779B9, 0xBB67AE85
MASK = 0xFFFFFFFF


def philox4x32_10(ctr, key):
    c = list(ctr)
    k = list(key)
    for _ in range(10):
        p0 = M0 * c[0]
        p1 = M1 * c[2]
        c = [((p1 >> 32) ^ c[1] ^ k[0]) & MASK, p1 & MASK,
             ((p0 >> 32) ^ c[3] ^ k[1]) & MASK, p0 & MASK]
        k = [(k[0] + W0) & MASK, (k[1] + W1) & MASK]
    return c


# Random123 kat_vectors, philox4x32 with 10 rounds.
KAT = [
    ([0, 0, 0, 0], [0, 0], [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]),
    ([MASK] * 4, [MASK, MASK], [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]),
    ([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0],
     [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]),
]
for ctr, key, want in KAT:
    assert philox4x32_10(ctr, key) == want, (ctr, key)


def block(counter, seed):
    return philox4x32_10([counter & MASK, counter >> 32, 0, 0], [seed & MASK, seed >> 32])


class Stream:
    def __init__(self, seed, pos=0):
        self.seed, self.pos = seed, pos

    def u32(self):
        w = block(self.pos // 4, self.seed)[self.pos % 4]
        self.pos += 1
        return w

    def uniform(self):
        hi = self.u32() >> 5
        lo = self.u32() >> 6
        return (hi * 67108864 + lo) / 9007199254740992.0

    def normal(self):
        u1, u2 = self.uniform(), self.uniform()
        u1 = max(u1, 1e-300)
        return math.sqrt(-2.0 * math.log(u1)) * math.cos(6.283185307179586476925 * u2)


def hexs(ws):
    return ", ".join("0x%08xu" % w for w in ws)


print("philox(counter=1, key=0):", hexs(block(1, 0)))
print("philox(counter=0x0123456789abcdef, key=0xfedcba9876543210):",
      hexs(block(0x0123456789abcdef, 0xfedcba9876543210)))
s = Stream(42)
print("seed 42 first 10 words:", hexs([s.u32() for _ in range(10)]))
s = Stream(42)
print("seed 42 first 4 uniforms:", ", ".join(repr(s.uniform()) for _ in range(4)))
s = Stream(42)
print("seed 42 first 4 normals:", ", ".join(repr(s.normal()) for _ in range(4)))
s = Stream(7, pos=6)
print("seed 7 from position 6, 3 words:", hexs([s.u32() for _ in range(3)]))
