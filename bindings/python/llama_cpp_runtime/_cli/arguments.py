"""Argument types the command line shares: argparse then exits 2 with the option named."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from .._child import MAX_TIMEOUT
from .._platform import INT32_MAX, UINT32_MAX  # a C int (threads, layers, token counts), a uint32_t (n_ctx)

__all__ = ["INT32_MAX", "MAX_TIMEOUT", "UINT32_MAX", "CommandError", "integer", "positive"]


class CommandError(Exception):
    """A command that failed, raised where it failed: main() says it once (`error: ...`) and exits with its
    code (1: something failed; 2: what was asked for cannot be done), as buildsys's report() does."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


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
