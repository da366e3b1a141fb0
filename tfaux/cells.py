"""How reports write numbers in their tables and JSON: signed points with a real minus sign,
p-values, a raw p beside its Holm-adjusted one, and NaN as JSON's null."""

from __future__ import annotations

import math


def signed(x: float, digits: int = 2) -> str:
    """+1.20 / −1.20 (a real minus sign, so columns of signed numbers line up)."""
    return f"{x:+.{digits}f}".replace("-", "−")


def p_text(p: float | None) -> str:
    """A p-value to 2 significant digits, "<0.001" below that, "–" where no test ran."""
    if p is None or math.isnan(p):
        return "–"
    return "<0.001" if p < 0.001 else f"{p:.2g}"


def p_pair(p: float | None, adjusted: float | None) -> str:
    """A raw p with its Holm-adjusted one in brackets; "–" where no test ran."""
    return "–" if p is None or math.isnan(p) else f"{p_text(p)} ({p_text(adjusted)})"


def finite(x: float | None) -> float | None:
    """JSON has no NaN: an undefined bound or p-value is written as null."""
    return None if x is None or math.isnan(x) else float(x)
