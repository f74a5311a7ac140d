"""Argument types the command line shares: argparse then exits 2 with the option named."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

INT32_MAX = 2**31 - 1  # a C int: threads, layers, token counts
UINT32_MAX = 2**32 - 1  # a C uint32_t: the context size
MAX_TIMEOUT = 7 * 24 * 3600.0  # seconds: beyond what the operating system's timers take, and any real wait


def positive(kind: Callable[[str], float], maximum: float | None = None) -> Callable[[str], float]:
    """A finite number above zero, and at most `maximum` (for a count, the C field it fills: a larger one
    would wrap)."""

    def parse(text: str) -> float:
        value = _number(kind, text)
        if not math.isfinite(value):  # nan and inf parse as floats; a timeout of either ends in a traceback
            raise argparse.ArgumentTypeError(f"{text} is not a finite number")
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text} is not above zero")
        if maximum is not None and value > maximum:
            most = int(maximum) if float(maximum).is_integer() else maximum
            raise argparse.ArgumentTypeError(f"{text} is more than {most}, the most it can be")
        return value

    parse.__name__ = kind.__name__
    return parse


def integer(low: int, high: int) -> Callable[[str], int]:
    """An integer from low to high (a C field's range)."""

    def parse(text: str) -> int:
        value = int(_number(int, text))
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text} is not from {low} to {high}")
        return value

    parse.__name__ = "int"
    return parse


def _number(kind: Callable[[str], float], text: str) -> float:
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
