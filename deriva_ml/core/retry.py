"""Retry schedules as pure data.

A retry policy is a tuple of delays computed up front. No clock is read and no random numbers are drawn
here: the caller (the imperative shell) supplies jitter fractions and does the sleeping, so that tests
can assert the exact schedule and never sleep.

Example::

    >>> backoff_delays(4, 1.0)
    (1.0, 2.0, 4.0, 8.0)
    >>> backoff_delays(3, 1.0, jitter=[0.5, -0.5, 0.0], cap=3.0)
    (1.5, 1.0, 3.0)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from deriva_ml.core.errors import ValidationError

__all__ = ["backoff_delays"]


def _finite_non_negative(name: str, value: float) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
        raise ValidationError(f"{name}={value!r} is not valid: expected a finite number >= 0")


def backoff_delays(
    max_retries: int,
    retry_delay: float,
    factor: float = 2.0,
    jitter: Sequence[float] | None = None,
    cap: float | None = None,
) -> tuple[float, ...]:
    """The delays (seconds) to wait before each of ``max_retries`` retries.

    The ``i``-th delay (``i`` from 0) is ``retry_delay * factor**i``, multiplied by ``1 + jitter[i]``
    when ``jitter`` is given, and finally limited to ``cap`` when given (the cap is a hard maximum,
    applied after jitter).

    Args:
        max_retries: number of retries (not attempts); ``0`` gives ``()``.
        retry_delay: the first delay, in seconds, ``>= 0``.
        factor: growth per retry, ``>= 1``.
        jitter: one fraction per retry, each in ``[-1, 1]``; the caller draws them (e.g.
            ``[random.uniform(-0.1, 0.1) for _ in range(n)]``). ``None`` means no jitter.
        cap: the largest delay allowed, ``>= 0``; ``None`` means no cap.

    Raises:
        ValidationError: a parameter is out of range, or ``jitter`` does not have exactly
            ``max_retries`` entries.
    """
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise ValidationError(f"max_retries={max_retries!r} is not valid: expected an integer >= 0")
    _finite_non_negative("retry_delay", retry_delay)
    if not (isinstance(factor, int | float) and math.isfinite(factor) and factor >= 1):
        raise ValidationError(f"factor={factor!r} is not valid: expected a finite number >= 1")
    if cap is not None:
        _finite_non_negative("cap", cap)
    fractions: tuple[float, ...]
    if jitter is None:
        fractions = (0.0,) * max_retries
    else:
        fractions = tuple(jitter)
        if len(fractions) != max_retries:
            raise ValidationError(f"jitter has {len(fractions)} entries: expected exactly max_retries={max_retries}")
        for j in fractions:
            if not (isinstance(j, int | float) and math.isfinite(j) and -1.0 <= j <= 1.0):
                raise ValidationError(f"jitter fraction {j!r} is not valid: expected a number in [-1, 1]")
    delays: list[float] = []
    for i, j in enumerate(fractions):
        if retry_delay == 0 or j == -1.0:
            delay = 0.0
        else:
            try:
                delay = retry_delay * factor**i * (1.0 + j)
            except OverflowError:  # factor**i too large for a float: the cap (if any) decides
                delay = math.inf
        if cap is not None:
            delay = min(delay, cap)
        delays.append(float(delay))
    return tuple(delays)
