"""What ``numpy.random.default_rng(seed)`` draws, computed for many integer seeds at once.

A plan draws every attempt from a generator of its own, seeded from the recipe hash and the
attempt's key, so that no attempt depends on any other. A million-image source makes over a million
such generators, and numpy has no vectorised way to construct (or draw from) many seeded generators:
one at a time, constructing them costs more than all the rest of planning. This module re-implements,
on arrays with one lane per seed, exactly the path numpy takes for an integer seed:

- ``SeedSequence``: the seed's 32-bit words hashed into a pool of four words, and the eight words of
  state generated from the pool (as four little-endian 64-bit words);
- ``PCG64``: seeding (state and increment from those words), the 128-bit LCG step and the XSL-RR
  output, computed in 64-bit limbs;
- ``Generator.integers`` (int64): Lemire's bounded method, a range below 2**32 drawn from 32-bit
  halves of a 64-bit output, the upper half kept for the next such draw as numpy buffers it; a range
  of one value draws nothing;
- ``Generator.uniform``: ``low + (high - low) * (next_uint64 >> 11) * 2**-53``.

A lane that would take one of numpy's rarely taken branches (a Lemire rejection, an empty or a
full-32-bit range) is drawn by numpy itself (``draw_one``), so every value equals numpy's bit for bit
by construction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

# SeedSequence's hash constants (numpy/random/bit_generator.pyx).
_INIT_A, _MULT_A = 0x43B0D7E5, 0x931E8875
_INIT_B, _MULT_B = 0x8B51F9DD, 0x58F38DED
_MIX_MULT_L, _MIX_MULT_R = 0xCA01F9DD, 0x4973F715
_POOL_SIZE = 4
# PCG64's 128-bit multiplier, as (high, low) 64-bit words.
_PCG_MULT_HIGH, _PCG_MULT_LOW = 2549297995355413924, 4865540595714422341

_U32 = np.uint32
_U64 = np.uint64
_LOW32 = _U64(0xFFFFFFFF)
_UINT32_MAX = 0xFFFFFFFF
_LANES_PER_BATCH = 1 << 16  # bounds the temporary arrays' memory


@dataclass(frozen=True)
class Integers:
    """``rng.integers(low, high)`` (int64): ``high`` is one bound for every lane or an array, one per lane."""

    high: int | np.ndarray
    low: int = 0


@dataclass(frozen=True)
class Uniform:
    """``rng.uniform(low, high)``."""

    low: float
    high: float


Draw = Integers | Uniform


def draw_one(seed: int, draws: Sequence[Draw]) -> list[int | float]:
    """numpy's own path: the values ``default_rng(seed)`` gives for ``draws``, in order (scalar bounds)."""
    rng = np.random.default_rng(seed)
    return [int(rng.integers(draw.low, int(draw.high))) if isinstance(draw, Integers)
            else float(rng.uniform(draw.low, draw.high)) for draw in draws]


def draw_each(seeds: np.ndarray, draws: Sequence[Draw]) -> list[np.ndarray]:
    """For every seed ``s`` of ``seeds`` (non-negative, below 2**64), the values ``default_rng(s)``
    gives for ``draws`` in order: one array per draw, int64 for ``Integers``, float64 for ``Uniform``."""
    seeds = np.asarray(seeds, dtype=_U64)
    results = [np.empty(len(seeds), dtype=np.int64 if isinstance(draw, Integers) else np.float64) for draw in draws]
    for start in range(0, len(seeds), _LANES_PER_BATCH):
        lanes = slice(start, start + _LANES_PER_BATCH)
        batch = [_batch_draw(draw, lanes) for draw in draws]
        values, exact = _draw_vectorised(seeds[lanes], batch)
        for result, value in zip(results, values):
            result[lanes] = value
        for lane in np.flatnonzero(~exact):
            scalar = [_lane_draw(draw, lane) for draw in batch]
            for result, value in zip(results, draw_one(int(seeds[start + lane]), scalar)):
                result[start + lane] = value
    return results


def _batch_draw(draw: Draw, lanes: slice) -> Draw:
    if isinstance(draw, Integers) and isinstance(draw.high, np.ndarray):
        return Integers(high=draw.high[lanes], low=draw.low)
    return draw


def _lane_draw(draw: Draw, lane: int) -> Draw:
    if isinstance(draw, Integers) and isinstance(draw.high, np.ndarray):
        return Integers(high=int(draw.high[lane]), low=draw.low)
    return draw


# ----------------------------------------------------------------------------------- SeedSequence

class _HashMix:
    """SeedSequence's ``hashmix`` with its running constant, which advances alike in every lane."""

    def __init__(self, initial: int, multiplier: int) -> None:
        self.constant = initial
        self.multiplier = multiplier

    def __call__(self, value: np.ndarray) -> np.ndarray:
        xor_with = self.constant
        self.constant = (self.constant * self.multiplier) & _UINT32_MAX
        value = (value ^ _U32(xor_with)) * _U32(self.constant)
        return value ^ (value >> _U32(16))


def _mix(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    result = _U32(_MIX_MULT_L) * x - _U32(_MIX_MULT_R) * y
    return result ^ (result >> _U32(16))


def _seed_sequence_words(seeds: np.ndarray) -> list[np.ndarray]:
    """The four 64-bit words ``SeedSequence(seed).generate_state(4, np.uint64)`` gives per lane.

    A seed below 2**32 has one word of entropy, not two; the pool is the same either way, because a
    missing word is hashed as a zero, which is what the seed's upper word then holds."""
    words = [(seeds & _LOW32).astype(_U32), (seeds >> _U64(32)).astype(_U32)]
    zero = np.zeros(len(seeds), dtype=_U32)
    hashmix = _HashMix(_INIT_A, _MULT_A)
    pool = [hashmix(words[i] if i < len(words) else zero) for i in range(_POOL_SIZE)]
    for source in range(_POOL_SIZE):
        for target in range(_POOL_SIZE):
            if source != target:
                pool[target] = _mix(pool[target], hashmix(pool[source]))
    state_hash = _HashMix(_INIT_B, _MULT_B)
    state = [state_hash(pool[i % _POOL_SIZE]) for i in range(2 * 4)]
    return [state[2 * i].astype(_U64) | (state[2 * i + 1].astype(_U64) << _U64(32)) for i in range(4)]


# ----------------------------------------------------------------------------------------- PCG64

def _mul_high64(a: np.ndarray, b: np.ndarray | np.uint64) -> np.ndarray:
    """The upper 64 bits of the 128-bit products ``a * b``, from 32-bit halves."""
    a_low, a_high = a & _LOW32, a >> _U64(32)
    b_low, b_high = b & _LOW32, b >> _U64(32)
    low_low = a_low * b_low
    high_low = a_high * b_low
    cross = (low_low >> _U64(32)) + (high_low & _LOW32) + a_low * b_high  # below 2**64
    return a_high * b_high + (high_low >> _U64(32)) + (cross >> _U64(32))


class _PCG64Lanes:
    """PCG64 states, one per lane, as (high, low) 64-bit words."""

    multiplier_high = _U64(_PCG_MULT_HIGH)
    multiplier_low = _U64(_PCG_MULT_LOW)

    def __init__(self, seeds: np.ndarray) -> None:
        state_high, state_low, sequence_high, sequence_low = _seed_sequence_words(seeds)
        # pcg64_set_seed: increment = (sequence << 1) | 1; state = step(step(0) + initial state).
        self.increment_high = (sequence_high << _U64(1)) | (sequence_low >> _U64(63))
        self.increment_low = (sequence_low << _U64(1)) | _U64(1)
        self.high, self.low = self.increment_high.copy(), self.increment_low.copy()
        self._add(state_high, state_low)
        self._step()

    def _add(self, high: np.ndarray, low: np.ndarray) -> None:
        total_low = self.low + low
        self.high = self.high + high + (total_low < low).astype(_U64)
        self.low = total_low

    def _step(self) -> None:
        high = (_mul_high64(self.low, self.multiplier_low) + self.low * self.multiplier_high
                + self.high * self.multiplier_low)
        self.high, self.low = high, self.low * self.multiplier_low
        self._add(self.increment_high, self.increment_low)

    def next_uint64(self) -> np.ndarray:
        self._step()
        folded = self.high ^ self.low
        rotation = self.high >> _U64(58)
        return (folded >> rotation) | (folded << ((_U64(64) - rotation) & _U64(63)))


# --------------------------------------------------------------------------------- the draws

def _draw_vectorised(seeds: np.ndarray, draws: Sequence[Draw]) -> tuple[list[np.ndarray], np.ndarray]:
    """Every draw for every lane, and which lanes are exact (the others took a branch not modelled)."""
    count = len(seeds)
    generator = _PCG64Lanes(seeds)
    # Each draw takes at most one 64-bit output when nothing is rejected: as many outputs as draws.
    outputs = np.stack([generator.next_uint64() for _ in draws])
    lanes = np.arange(count)
    position = np.zeros(count, dtype=np.int64)  # the next unused output of each lane
    has_buffered = np.zeros(count, dtype=bool)  # numpy's has_uint32 / uinteger
    buffered = np.zeros(count, dtype=_U64)
    exact = np.ones(count, dtype=bool)
    values: list[np.ndarray] = []
    for draw in draws:
        if isinstance(draw, Uniform):
            width = draw.high - draw.low
            exact &= bool(np.isfinite(width) and width >= 0)  # else numpy raises, and so does draw_one
            unit = (outputs[position, lanes] >> _U64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)
            values.append(draw.low + width * unit)
            position += 1
            continue
        span = np.broadcast_to(np.asarray(draw.high, dtype=np.int64) - 1 - draw.low, (count,))
        exact &= (span >= 0) & (span != _UINT32_MAX)
        small = (span > 0) & (span < _UINT32_MAX)
        large = span > _UINT32_MAX
        span = span.astype(_U64)
        span_excl = span + _U64(1)
        divisor = np.where(span_excl == 0, _U64(1), span_excl)
        output = outputs[position, lanes]
        # 32-bit draws: a fresh output gives its lower half and buffers its upper one.
        fresh = small & ~has_buffered
        word32 = np.where(has_buffered, buffered, output & _LOW32)
        buffered = np.where(fresh, output >> _U64(32), buffered)
        has_buffered = np.where(small, ~has_buffered, has_buffered)
        scaled32 = word32 * span_excl
        threshold32 = (_U64(_UINT32_MAX) - span) % divisor
        exact &= ~(small & ((scaled32 & _LOW32) < threshold32))
        # 64-bit draws: the upper word of the 128-bit product.
        threshold64 = (_U64(2**64 - 1) - span) % divisor
        exact &= ~(large & (output * span_excl < threshold64))
        drawn = np.where(small, scaled32 >> _U64(32), np.where(large, _mul_high64(output, span_excl), _U64(0)))
        position += fresh | large
        values.append(drawn.astype(np.int64) + draw.low)
    return values, exact
