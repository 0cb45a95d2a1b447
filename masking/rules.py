"""Masking rules: pure functions over Arrow arrays, one per :class:`~schemas.contract.MaskRule`.

Common choices, so that every rule behaves alike:

- Nulls stay null.
- Display masks (name, mobile, id, address) keep an empty string empty: there is nothing
  to hide, and turning it into ``***`` would invent a value.
- The token of an empty string is null, like a null: an empty identifier identifies
  nobody, and a token for it would make every blank row join every other blank row.
- Display masks put one ``*`` per hidden character: the length of a name or number is
  not what identifies a person, and a fixed width would make 15- and 18-digit identity
  numbers look alike when stewards need to tell them apart.
- Everything is vectorised with :mod:`pyarrow.compute` except the HMAC itself, which
  needs one call per value.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from masking.errors import MaskRuleError
from masking.keys import TokenKey
from schemas.contract import MaskRule

ArrayLike: TypeAlias = pa.Array | pa.ChunkedArray
Rule: TypeAlias = Callable[[ArrayLike, TokenKey | None], ArrayLike]

# fmt: off
COMPOUND_SURNAMES: frozenset[str] = frozenset(
    {
        "欧阳", "太史", "端木", "上官", "司马", "东方", "独孤", "南宫", "万俟", "闻人",
        "夏侯", "诸葛", "尉迟", "公羊", "赫连", "澹台", "皇甫", "宗政", "濮阳", "公冶",
        "太叔", "申屠", "公孙", "慕容", "仲孙", "钟离", "长孙", "宇文", "司徒", "鲜于",
        "司空", "闾丘", "子车", "亓官", "司寇", "巫马", "公西", "颛孙", "壤驷", "公良",
        "漆雕", "乐正", "宰父", "谷梁", "拓跋", "夹谷", "轩辕", "令狐", "段干", "百里",
        "呼延", "东郭", "南门", "羊舌", "微生", "公户", "公玉", "公仪", "梁丘", "公仲",
        "公上", "公门", "公山", "公坚", "左丘", "公伯", "西门", "公祖", "第五", "公乘",
        "贯丘", "公皙", "南荣", "东里", "东宫", "仲长", "子书", "子桑", "即墨", "达奚",
        "褚师",
    }
)
# fmt: on
"""Two-character surnames of the Hundred Family Surnames (百家姓) and a few common others.

A two-character name starting with one of these (欧阳 alone) is read as a one-character
surname plus a given name, since a person always has a given name."""

_ID_HEAD, _ID_TAIL = 6, 4
"""Identity number: division code stays (region, already public in the division column)
and the last 4 stay (what clerks read back to citizens), birth date and sequence go."""
_MOBILE_HEAD, _MOBILE_TAIL = 3, 4
"""Mobile: carrier prefix and last 4, the convention of bank and government notices."""

_NOT_IN_UNIT_NAMES = r"\s0-9０-９街号楼栋室弄巷"
_NAME = rf"[^{_NOT_IN_UNIT_NAMES}]"
_PROVINCE = rf"(?:(?:北京|天津|上海|重庆)市|{_NAME}{{2,}}?(?:省|自治区|特别行政区))"
_PREFECTURE = rf"{_NAME}+?(?:市|自治州|地区|盟)"
_COUNTY_AFTER_PREFECTURE = rf"{_NAME}+?(?:区|县|旗|市)"
_COUNTY = rf"[^{_NOT_IN_UNIT_NAMES}省市]+?(?:区|县|旗)"
ADDRESS_PATTERN = rf"^(?P<admin>{_PROVINCE}?(?:{_PREFECTURE}{_COUNTY_AFTER_PREFECTURE}|{_COUNTY}))"
"""Province (optional), then a prefecture and a county-level unit (区/县/旗/市), or a
county-level 区/县/旗 alone. A 市 only counts as county-level after a prefecture, otherwise
"深圳市" would end the prefix one level too early. Digits and street words (街, 号, 楼...)
never occur in unit names, so a house number can never be kept. Names are not bounded in
length: bounded repetitions made the pattern six times slower for no safety gain, since
the match must still end on a unit character. Without a gazetteer, a street-level place
ending in 区 (e.g. an industrial park) right after a prefecture is kept as if a county."""
ADDRESS_UNRECOGNISED = "***"


def keep(values: ArrayLike) -> ArrayLike:
    """The value unchanged (fields the contract shares as they are)."""
    return values


def null(values: ArrayLike) -> pa.Array:
    """All null, same type: the column stays in the schema but carries nothing."""
    return pa.nulls(len(values), type=values.type)


def year(values: ArrayLike) -> ArrayLike:
    """The year of a date or timestamp, as int32."""
    if not (pa.types.is_date(values.type) or pa.types.is_timestamp(values.type)):
        raise MaskRuleError(f"rule 'year' needs a date or timestamp column, got {values.type}")
    return pc.cast(pc.year(values), pa.int32())


def mask_name(values: ArrayLike) -> ArrayLike:
    """Surname kept, ``*`` for every other character: 张三 -> 张*, 欧阳娜娜 -> 欧阳**.

    A one-character name becomes ``*``: keeping it would publish the whole name.
    """
    _require_string(values, MaskRule.MASK_NAME)
    length = pc.utf8_length(values)
    compound = pc.fill_null(
        pc.and_(
            pc.is_in(pc.utf8_slice_codeunits(values, 0, 2), value_set=_COMPOUND_ARRAY),
            pc.greater(length, 2),
        ),
        False,
    )
    kept = pc.if_else(compound, 2, pc.if_else(pc.greater(length, 1), 1, 0))
    head = pc.if_else(
        compound,
        pc.utf8_slice_codeunits(values, 0, 2),
        pc.utf8_slice_codeunits(values, 0, 1),
    )
    head = pc.if_else(pc.equal(kept, 0), "", head)
    stars = pc.binary_repeat("*", pc.subtract(length, kept))
    return pc.binary_join_element_wise(head, stars, "")


def mask_mobile(values: ArrayLike) -> ArrayLike:
    """First 3 and last 4 kept (13812348000 -> 138****8000); 7 characters or fewer: all ``*``."""
    _require_string(values, MaskRule.MASK_MOBILE)
    return _keep_ends(values, _MOBILE_HEAD, _MOBILE_TAIL)


def mask_id(values: ArrayLike) -> ArrayLike:
    """First 6 and last 4 kept (11010519491231002X -> 110105********002X).

    15-digit numbers keep the same ends; 10 characters or fewer become all ``*``.
    """
    _require_string(values, MaskRule.MASK_ID)
    return _keep_ends(values, _ID_HEAD, _ID_TAIL)


def mask_address(values: ArrayLike) -> ArrayLike:
    """Administrative levels only, up to the first county-level unit; ``***`` if none is found.

    广东省深圳市南山区科技路12号 -> 广东省深圳市南山区. An address whose county cannot be
    recognised is hidden whole rather than cut at a guess, so a street is never published.
    """
    _require_string(values, MaskRule.MASK_ADDRESS)
    admin = pc.struct_field(pc.extract_regex(values, ADDRESS_PATTERN), [0])
    unrecognised = pc.and_(pc.is_null(admin), pc.is_valid(values))
    masked = pc.if_else(unrecognised, ADDRESS_UNRECOGNISED, admin)
    return pc.if_else(pc.equal(values, ""), "", masked)


def token(values: ArrayLike, key: TokenKey) -> ArrayLike:
    """Keyed token: ``k<version>_`` + unpadded url-safe base64 of HMAC-SHA256(key, UTF-8 value).

    Same value and key give the same token, so datasets join on it; without the key the
    token cannot be recomputed from a guessed identity number, unlike a bare hash.
    """
    _require_string(values, MaskRule.TOKEN)
    present = pc.fill_null(pc.not_equal(values, ""), False)
    compact = pc.filter(values, present)
    pieces = [
        _token_strings(chunk.slice(start, _TOKENS_PER_PIECE).cast(pa.binary()).to_pylist(), key)
        for chunk in (compact.chunks if isinstance(compact, pa.ChunkedArray) else [compact])
        for start in range(0, len(chunk), _TOKENS_PER_PIECE)
    ]
    tokens: ArrayLike = pieces[0] if len(pieces) == 1 else pa.chunked_array(pieces, type=pa.string())
    # Position of each row in `tokens`, null where the row has no token.
    positions = pc.subtract(pc.cumulative_sum(pc.cast(present, pa.int64())), 1)
    return pc.take(tokens, pc.if_else(present, positions, None))


RULES: Mapping[MaskRule, Rule] = MappingProxyType(
    {
        MaskRule.KEEP: lambda values, _key: keep(values),
        MaskRule.NULL: lambda values, _key: null(values),
        MaskRule.YEAR: lambda values, _key: year(values),
        MaskRule.MASK_NAME: lambda values, _key: mask_name(values),
        MaskRule.MASK_MOBILE: lambda values, _key: mask_mobile(values),
        MaskRule.MASK_ID: lambda values, _key: mask_id(values),
        MaskRule.MASK_ADDRESS: lambda values, _key: mask_address(values),
        MaskRule.TOKEN: lambda values, key: token(values, _need_key(key)),
    }
)
"""The one place a rule name becomes code; a rule missing here is an error, never a pass-through."""


def apply_rule(rule: MaskRule | str, values: ArrayLike, *, key: TokenKey | None = None) -> ArrayLike:
    """Apply a rule by its contract name; ``key`` is needed by the token rule only."""
    try:
        fn = RULES[MaskRule(rule)]
    except (ValueError, KeyError):
        known = ", ".join(r.value for r in RULES)
        raise MaskRuleError(f"unknown masking rule {rule!r} (known: {known})") from None
    return fn(values, key)


_COMPOUND_ARRAY = pa.array(sorted(COMPOUND_SURNAMES), type=pa.string())


def _require_string(values: ArrayLike, rule: MaskRule) -> None:
    if not pa.types.is_string(values.type) and not pa.types.is_large_string(values.type):
        raise MaskRuleError(f"rule {rule.value!r} needs a string column, got {values.type}")


def _need_key(key: TokenKey | None) -> TokenKey:
    if key is None:
        raise MaskRuleError("rule 'token' needs a key from the keyring; none was given")
    return key


def _keep_ends(values: ArrayLike, head: int, tail: int) -> ArrayLike:
    length = pc.utf8_length(values)
    long_enough = pc.greater(length, head + tail)
    hidden = pc.if_else(long_enough, pc.subtract(length, head + tail), length)
    first = pc.if_else(long_enough, pc.utf8_slice_codeunits(values, 0, head), "")
    last = pc.if_else(long_enough, pc.utf8_slice_codeunits(values, -tail), "")
    return pc.binary_join_element_wise(first, pc.binary_repeat("*", hidden), last, "")


_BLOCK = 64
_IPAD = bytes.maketrans(bytes(range(256)), bytes(b ^ 0x36 for b in range(256)))
_OPAD = bytes.maketrans(bytes(range(256)), bytes(b ^ 0x5C for b in range(256)))
_TOKENS_PER_PIECE = 1 << 20
"""Tokens built per Arrow buffer: 46 MiB at most, far below the 2 GiB of 32-bit offsets."""
_ENCODED = 43  # base64 characters of a 32-byte digest, padding dropped


def _token_strings(values: list[bytes], key: TokenKey) -> pa.Array:
    """HMAC-SHA256 of each value, base64 in one pass, assembled into one Arrow buffer.

    HMAC (RFC 2104) is computed from SHA-256 states already fed with the padded key, so
    each value costs two C-level hash copies instead of a Python HMAC object (about twice
    the throughput of ``hmac.new`` per value; tests check equality with :mod:`hmac`).
    """
    material = key.secret.reveal()
    if len(material) > _BLOCK:
        material = hashlib.sha256(material).digest()
    material = material.ljust(_BLOCK, b"\0")
    inner_copy = hashlib.sha256(material.translate(_IPAD)).copy
    outer_copy = hashlib.sha256(material.translate(_OPAD)).copy
    digests: list[bytes] = []
    append = digests.append
    for value in values:
        inner = inner_copy()
        inner.update(value)
        outer = outer_copy()
        outer.update(inner.digest())
        append(outer.digest())
    count = len(digests)
    prefix = key.prefix.encode("ascii")
    width = len(prefix) + _ENCODED
    if count == 0:
        return pa.array([], type=pa.string())
    # A zero byte after each 32-byte digest makes 33-byte blocks that base64 encodes to
    # exactly 44 characters each; the first 43 are the unpadded encoding of the digest.
    encoded = base64.urlsafe_b64encode(b"\0".join(digests) + b"\0")
    blocks = np.frombuffer(encoded, dtype=np.uint8).reshape(count, _ENCODED + 1)
    data = np.empty((count, width), dtype=np.uint8)
    data[:, : len(prefix)] = np.frombuffer(prefix, dtype=np.uint8)
    data[:, len(prefix) :] = blocks[:, :_ENCODED]
    offsets = np.arange(0, (count + 1) * width, width, dtype=np.int32)
    return pa.Array.from_buffers(pa.string(), count, [None, pa.py_buffer(offsets), pa.py_buffer(data)])
