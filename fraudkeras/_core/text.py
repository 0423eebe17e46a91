"""Small wording helpers shared by messages and reports."""

from __future__ import annotations


def counted(n: int, noun: str) -> str:
    """``1 epoch``, ``2 epochs``: a count with its noun in the right number."""
    return f"{n:,d} {noun}" + ("" if n == 1 else "s")
