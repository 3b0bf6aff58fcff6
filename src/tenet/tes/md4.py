"""MD4 (RFC 1320), for MSCHAPv2's NT password hash only.

OpenSSL 3 moved MD4 to its legacy provider, so `hashlib` here has none; MSCHAPv2 (RFC 2759)
cannot do without it. MD4 is broken as a hash: nothing else may use this.
"""
from __future__ import annotations

import struct

MASK = 0xFFFFFFFF


def _rotl(x: int, n: int) -> int:
    x &= MASK
    return ((x << n) | (x >> (32 - n))) & MASK


def _f(x: int, y: int, z: int) -> int:
    return (x & y) | (~x & z)


def _g(x: int, y: int, z: int) -> int:
    return (x & y) | (x & z) | (y & z)


def _h(x: int, y: int, z: int) -> int:
    return x ^ y ^ z


# (round function, additive constant, word order, shifts) of the three rounds, RFC 1320 §3.4
ROUNDS = (
    (_f, 0x00000000, tuple(range(16)), (3, 7, 11, 19)),
    (_g, 0x5A827999, (0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), (3, 5, 9, 13)),
    (_h, 0x6ED9EBA1, (0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15), (3, 9, 11, 15)),
)


def md4(data: bytes) -> bytes:
    """The 16-byte MD4 digest of `data`."""
    padded = data + b"\x80" + b"\x00" * ((55 - len(data)) % 64) + struct.pack("<Q", (8 * len(data)) & (2**64 - 1))
    state = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476]
    for off in range(0, len(padded), 64):
        x = struct.unpack_from("<16I", padded, off)
        a, b, c, d = state
        for fn, k, order, shifts in ROUNDS:
            for i, j in enumerate(order):
                a = _rotl(a + fn(b, c, d) + x[j] + k, shifts[i % 4])
                a, b, c, d = d, a, b, c
        state = [(s + v) & MASK for s, v in zip(state, (a, b, c, d))]
    return struct.pack("<4I", *state)
