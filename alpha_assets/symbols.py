"""The one rule for an exchange symbol name (BTCUSDT): the project file, a soak's run config and
the executor contract all validate with it. Plain Python: the executors import it too."""

from __future__ import annotations

import re
from collections.abc import Iterable

SYMBOL_PATTERN = r"^[A-Z0-9]{4,20}$"
SYMBOL_RULE = "4-20 upper-case letters/digits, e.g. BTCUSDT"
_SYMBOL = re.compile(SYMBOL_PATTERN)


def is_symbol(name: str) -> bool:
    return _SYMBOL.fullmatch(name) is not None


def normalise_symbols(values: Iterable[str]) -> list[str]:
    """Stripped and upper-cased, each checked against the rule and given once; ValueError names the
    offending value (pydantic validators turn it into a field error)."""
    out = [s.strip().upper() for s in values]
    for s in out:
        if not is_symbol(s):
            raise ValueError(f"symbol {s!r} must be {SYMBOL_RULE}")
    if len(set(out)) != len(out):
        raise ValueError("symbols must be unique")
    return out
