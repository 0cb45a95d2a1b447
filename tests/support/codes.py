"""Independent checks of generated codes (GB 11714 organisation codes), for the simulator tests."""

from __future__ import annotations


def org_code_ok(code: str) -> bool:
    """GB 11714, written independently of the simulator: weights 3 7 9 10 5 8 4 2 over the
    8-character body (digits as themselves, A=10 ... Z=35), check 11 - S mod 11 (10 X, 11 0)."""
    total = sum(int(c, 36) * weight for c, weight in zip(code[:8], (3, 7, 9, 10, 5, 8, 4, 2), strict=True))
    value = 11 - total % 11
    return code[8] == {10: "X", 11: "0"}.get(value, str(value))
