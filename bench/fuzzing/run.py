"""Drive one target: draw inputs, run the decoder, classify what came out. Pure but for the
clock (and the crash files the CLI writes from the result)."""
from __future__ import annotations

import re
import signal
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from random import Random
from typing import Any

HANG_SECONDS = 1.0  # an input slower than this is a hang, whatever it returned
BACKSTOP_SECONDS = 10  # an input still running is interrupted then (SIGALRM), reported as a hang
CORPUS_MAX = 256  # inputs kept because they gave an outcome not seen before


@dataclass(frozen=True)
class Target:
    """A decoder of untrusted input and the errors its API promises: anything else escaping
    it is a crash."""

    name: str
    seeds: tuple[Any, ...]  # valid inputs, built with our own encoders
    mutate: Callable[[Random, Any, Any], Any]  # (rng, an input, another input) -> a new input
    run: Callable[[Any], object]  # the code under test; a str it returns names the outcome
    expected: tuple[type[BaseException], ...]  # what its API documents
    fresh: Callable[[Random], Any] | None = None  # an input from nothing (random bytes, a grammar)
    show: Callable[[Any], bytes] = lambda x: x if isinstance(x, bytes) else repr(x).encode()


@dataclass(frozen=True)
class Finding:
    kind: str  # crash | hang
    outcome: str  # the exception type (or the outcome of the slow input)
    message: str
    seconds: float
    data: bytes  # the input, as Target.show renders it
    index: int  # which input of the run


@dataclass(frozen=True)
class Result:
    target: str
    inputs: int
    seconds: float  # wall time of the whole run, mutation included
    outcomes: tuple[tuple[str, int], ...]  # outcome -> count, most frequent first
    kinds: int  # distinct (outcome, message with numbers blurred): how many ways in and out it saw
    findings: tuple[Finding, ...]
    slowest: float  # seconds of the slowest single input
    crashes: int
    hangs: int

    @property
    def rate(self) -> float:
        return self.inputs / self.seconds if self.seconds else 0.0


class _Backstop(BaseException):
    """Raised by SIGALRM inside an input that never returns (not an Exception: a decoder's
    `except Exception` must not swallow it)."""


def _shape(message: str) -> str:
    """A message with its numbers and quoted parts blurred: one corpus slot per kind of error."""
    return _BLUR.sub("#", message)[:80]


_BLUR = re.compile(r"[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2})+|0x[0-9a-fA-F]+|\d+|'[^']*'|\"[^\"]*\"|b'[^']*'")


def _where(e: BaseException) -> str:
    """The innermost frame of our own code the exception passed: where to fix it."""
    frames = [f for f in traceback.extract_tb(e.__traceback__) if "/tenet/" in f.filename] or \
        traceback.extract_tb(e.__traceback__)[-1:]
    f = frames[-1] if frames else None
    return f"{f.filename.rsplit('/src/', 1)[-1]}:{f.lineno} {f.name}" if f else "?"


def _one(target: Target, x: Any) -> tuple[str, str, bool, float]:
    """(outcome, message, crashed, seconds) of one input."""
    t0 = time.perf_counter()
    try:
        r = target.run(x)
        outcome, message, crashed = (r if isinstance(r, str) else "ok"), "", False
    except target.expected as e:
        outcome, message = type(e).__name__, str(e)
        crashed = not message.strip()  # an error that does not say what was wrong is a bug too
    except _Backstop:
        outcome, message, crashed = "backstop", f"still running after {BACKSTOP_SECONDS} s", False
    except Exception as e:  # noqa: BLE001 - the point: anything else is a crash
        kind = type(e)
        name = kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__name__}"
        outcome, message, crashed = name, f"{_where(e)}: {str(e)[:500]}", True
    return outcome, message, crashed, time.perf_counter() - t0


def run(target: Target, inputs: int, seed: int, max_findings: int = 10) -> Result:
    """`inputs` inputs drawn deterministically from `seed`: seeds first, then mutations of the
    seeds and of inputs that gave a new kind of outcome, and fresh ones now and then."""
    rng = Random(f"{seed}:{target.name}")
    corpus = list(target.seeds)
    seen: set[tuple[str, str]] = set()
    reported: set[tuple[str, str]] = set()
    kinds: set[tuple[str, str]] = set()
    counts: Counter[str] = Counter()
    findings: list[Finding] = []
    crashes = hangs = 0
    slowest = 0.0
    alarm = threading.current_thread() is threading.main_thread() and hasattr(signal, "SIGALRM")
    old = signal.signal(signal.SIGALRM, _raise_backstop) if alarm else None
    start = time.perf_counter()
    try:
        for i in range(inputs):
            if i < len(target.seeds):
                x = target.seeds[i]
            elif target.fresh is not None and rng.random() < 0.1:
                x = target.fresh(rng)
            else:
                x = target.mutate(rng, rng.choice(corpus), rng.choice(corpus))
            if alarm:
                signal.setitimer(signal.ITIMER_REAL, BACKSTOP_SECONDS)
            outcome, message, crashed, took = _one(target, x)
            if alarm:
                signal.setitimer(signal.ITIMER_REAL, 0)
            counts[outcome] += 1
            slowest = max(slowest, took)
            hung = took > HANG_SECONDS or outcome == "backstop"
            crashes += crashed
            hangs += hung
            shape = (outcome, _shape(message))
            kinds.add(shape)
            if (crashed or hung) and len(findings) < max_findings and shape not in reported:
                reported.add(shape)  # one example of each kind is enough to read
                findings.append(Finding("crash" if crashed else "hang", outcome, message, took, target.show(x), i))
            if shape not in seen and not crashed and not hung:
                seen.add(shape)
                if len(corpus) < CORPUS_MAX + len(target.seeds):
                    corpus.append(x)
    finally:
        if alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
    return Result(target.name, inputs, time.perf_counter() - start, tuple(counts.most_common()), len(kinds), tuple(findings),
                  slowest, crashes, hangs)


def _raise_backstop(signum: int, frame: object) -> None:
    raise _Backstop()
