"""County-level GB/T 2260 division codes with their validity years, from python-stdnum.

python-stdnum keeps a maintained table of division codes (``stdnum/cn/loc.dat``) with the
years each name was in force; ``stdnum.cn.ric`` accepts an identity number only if its
division code was valid in the birth year. Drawing codes from the same table, per birth
year, makes every generated number pass that check.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from stdnum import numdb

_SPAN = re.compile(r"^\[(?P<start>\d*)-(?P<end>\d*)\](?P<name>.+)$")
_COUNTY_SUFFIXES = ("区", "县", "市", "旗")
"""Regular county-level units; offices (办事处), islands and committees are left out."""
_PREFECTURE_SUFFIXES = ("市", "州", "盟", "地区")
"""Prefecture names that belong in an address; placeholders such as 市辖区 or
省直辖县级行政单位 do not."""
_PROVINCES = range(11, 66)
"""Mainland provinces; 71 (Taiwan), 81 and 82 (Hong Kong, Macao) have no county codes."""
NO_END = 9999


@dataclass(frozen=True)
class Span:
    """One name of a division code and the years it was in force (inclusive)."""

    start: int
    end: int
    name: str


def parse_spans(text: str) -> list[Span]:
    """Parse ``"[1983-1989]南头区办事处,[1990-]南山区"`` the way ``stdnum.cn.ric`` reads it."""
    spans = []
    for part in text.split(","):
        match = _SPAN.match(part)
        if match is None:
            spans.append(Span(0, NO_END, part))
            continue
        start, end = match.group("start"), match.group("end")
        spans.append(Span(int(start) if start else 0, int(end) if end else NO_END, match.group("name")))
    return spans


@dataclass(frozen=True, eq=False)
class CountyTable:
    """Flat table of (county code, address prefix, first year, last year), one row per name."""

    codes: np.ndarray
    prefixes: list[str]
    start: np.ndarray
    end: np.ndarray

    def valid_in(self, year: int) -> np.ndarray:
        """Row indices of the counties whose code was valid in ``year``."""
        return _valid_in(self, year)


@lru_cache(maxsize=256)
def _valid_in(table: CountyTable, year: int) -> np.ndarray:
    return np.flatnonzero((table.start <= year) & (table.end >= year))


def _prefecture_name(props: dict[str, Any]) -> str:
    spans = parse_spans(props.get("county", ""))
    name = spans[-1].name if spans else ""
    return name if name.endswith(_PREFECTURE_SUFFIXES) else ""


@lru_cache(maxsize=1)
def county_table() -> CountyTable:
    """All mainland county codes of the stdnum table, read once per process."""
    codes: list[int] = []
    prefixes: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    for _length, low, _high, props, children in numdb.get("cn/loc").prefixes:
        if int(low) not in _PROVINCES:
            continue
        province = props["province"]
        prefectures = {
            child[1][:2]: _prefecture_name(child[3]) for child in children if child[1].endswith("00")
        }
        for _clen, clow, _chigh, cprops, _grandchildren in children:
            if clow.endswith("00"):
                continue
            for span in parse_spans(cprops.get("county", "")):
                if span.name == "市辖区" or not span.name.endswith(_COUNTY_SUFFIXES):
                    continue
                prefecture = prefectures.get(clow[:2], "")
                if prefecture == span.name:
                    prefecture = ""
                codes.append(int(low + clow))
                prefixes.append(province + prefecture + span.name)
                starts.append(span.start)
                ends.append(span.end)
    return CountyTable(
        codes=np.array(codes, dtype=np.int64),
        prefixes=prefixes,
        start=np.array(starts, dtype=np.int32),
        end=np.array(ends, dtype=np.int32),
    )
