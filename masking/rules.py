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
- Generalisations (``prefecture``, ``province``) keep an empty string empty too, and
  hide a code that is not 6 characters long with one ``*`` per character rather than guess.
- ``encrypt`` leaves an empty string empty (its ciphertext would only reveal emptiness).
- Everything is vectorised with :mod:`pyarrow.compute` and numpy except the HMAC itself,
  which needs one call per value. Display masks work on the UTF-8 offsets and data buffers
  with numpy (any string, any script): the compute-kernel version managed ~3M names/s.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Mapping
from datetime import date
from types import MappingProxyType
from typing import Any, Protocol, TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from masking import crypto
from masking.errors import MaskRuleError
from masking.keys import KeyKind
from schemas.contract import RULE_PARAMS, MaskRule


class RevealsSecret(Protocol):
    def reveal(self) -> bytes: ...


class KeyLike(Protocol):
    """What the token rule needs of a keyring key (token key or data key of kind "token")."""

    @property
    def version(self) -> int: ...

    @property
    def secret(self) -> RevealsSecret: ...

    @property
    def prefix(self) -> str: ...


ArrayLike: TypeAlias = pa.Array | pa.ChunkedArray
Rule: TypeAlias = Callable[[ArrayLike, Any, dict[str, Any]], ArrayLike]
"""``rule(values, key, params)``: ``key`` is the keyring key the rule needs (token,
encrypt) or None, ``params`` the contract's parameters of the rule."""

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

ID_HEAD, ID_TAIL = 6, 4
"""Identity number: division code stays (region, already public in the division column)
and the last 4 stay (what clerks read back to citizens), birth date and sequence go."""
MOBILE_HEAD, MOBILE_TAIL = 3, 4
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
    _require_date(values, MaskRule.YEAR)
    return pc.cast(pc.year(values), pa.int32())


def month(values: ArrayLike) -> ArrayLike:
    """The month of a date or timestamp as text ``"YYYY-MM"``.

    Text rather than a date truncated to the first of the month: a consumer could not tell
    1990-03-01 "born in March" from a real first-of-March birthday, and would compute
    exact ages from it.
    """
    _require_date(values, MaskRule.MONTH)
    y = pc.cast(pc.year(values), pa.string())
    m = pc.utf8_lpad(pc.cast(pc.month(values), pa.string()), 2, "0")
    return pc.binary_join_element_wise(y, m, "-")


DEFAULT_AGE_BAND_WIDTH = 10
"""Ten-year bands ("30-39") are the common statistical grouping and, with gender and a
prefecture, usually leave groups of five or more in a prefecture's population."""


def age_band(values: ArrayLike, *, reference: date, width: int = DEFAULT_AGE_BAND_WIDTH) -> ArrayLike:
    """Age in full years at ``reference``, as a band ``"30-39"`` (``width`` years each).

    Ages are computed at a stated reference date so the same batch always gives the same
    view. A birth after the reference date counts as age 0.
    """
    _require_date(values, MaskRule.AGE_BAND)
    if width < 1:
        raise MaskRuleError("rule 'age_band' needs a width of at least 1 year")
    born_y = pc.cast(pc.year(values), pa.int64())
    born_md = pc.add(
        pc.multiply(pc.cast(pc.month(values), pa.int64()), 100), pc.cast(pc.day(values), pa.int64())
    )
    before_birthday = pc.cast(pc.greater(born_md, reference.month * 100 + reference.day), pa.int64())
    age = pc.max_element_wise(
        pc.subtract(pc.subtract(reference.year, born_y), before_birthday), 0, skip_nulls=False
    )
    return band_labels(pc.multiply(pc.divide(age, width), width), width)


def band_labels(lower: ArrayLike, width: int) -> ArrayLike:
    """``"lo-hi"`` labels of integer bands starting at ``lower``."""
    lo = pc.cast(lower, pa.string())
    hi = pc.cast(pc.add(lower, width - 1), pa.string())
    return pc.binary_join_element_wise(lo, hi, "-")


def prefecture(values: ArrayLike) -> ArrayLike:
    """Division code to its prefecture, ``PPCCDD`` -> ``PPCC00`` (GB/T 2260)."""
    _require_string(values, MaskRule.PREFECTURE)
    return _division_prefix(values, 4)


def province(values: ArrayLike) -> ArrayLike:
    """Division code to its province, ``PPCCDD`` -> ``PP0000`` (GB/T 2260)."""
    _require_string(values, MaskRule.PROVINCE)
    return _division_prefix(values, 2)


def mask_name(values: ArrayLike) -> ArrayLike:
    """Surname kept, ``*`` for every other character: 张三 -> 张*, 欧阳娜娜 -> 欧阳**.

    A one-character name becomes ``*``: keeping it would publish the whole name.
    """
    _require_string(values, MaskRule.MASK_NAME)
    return _per_chunk(values, _mask_name_chunk)


def mask_keep(values: ArrayLike, *, first: int, last: int) -> ArrayLike:
    """First ``first`` and last ``last`` characters kept, one ``*`` for each other character.

    A value of ``first + last`` characters or fewer becomes all ``*``: keeping both ends
    would keep all of it.
    """
    _require_string(values, MaskRule.MASK_KEEP)
    return _keep_ends(values, first, last)


def mask_mobile(values: ArrayLike, *, first: int = MOBILE_HEAD, last: int = MOBILE_TAIL) -> ArrayLike:
    """First 3 and last 4 kept (13812348000 -> 138****8000); 7 characters or fewer: all ``*``."""
    _require_string(values, MaskRule.MASK_MOBILE)
    return _keep_ends(values, first, last)


def mask_id(values: ArrayLike, *, first: int = ID_HEAD, last: int = ID_TAIL) -> ArrayLike:
    """First 6 and last 4 kept (11010519491231002X -> 110105********002X).

    15-digit numbers keep the same ends; 10 characters or fewer become all ``*``.
    """
    _require_string(values, MaskRule.MASK_ID)
    return _keep_ends(values, first, last)


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


def token(values: ArrayLike, key: KeyLike, *, only_prefixes: tuple[str, ...] | None = None) -> ArrayLike:
    """Keyed token: ``k<version>_`` + unpadded url-safe base64 of HMAC-SHA256(key, UTF-8 value).

    Same value and key give the same token, so datasets join on it; without the key the
    token cannot be recomputed from a guessed identity number, unlike a bare hash. With
    ``only_prefixes``, only values starting with one of them are tokenised, the rest kept.
    """
    _require_string(values, MaskRule.TOKEN)
    present = pc.fill_null(pc.not_equal(values, ""), False)
    if only_prefixes is None:
        return _scatter(values, present, lambda compact: _tokens(compact, key))
    chosen = _starts_with_any(values, only_prefixes)
    tokens = _scatter(values, pc.and_(present, chosen), lambda compact: _tokens(compact, key))
    return pc.if_else(chosen, tokens, values)


def encrypt(values: ArrayLike, key: Any) -> ArrayLike:
    """AES-256-GCM with the keyring's current encrypt key (``e<version>:...``, see
    :func:`masking.crypto.encrypt_array`); only a key holder can reverse it."""
    _require_string(values, MaskRule.ENCRYPT)
    present = pc.fill_null(pc.not_equal(values, ""), False)
    encrypted = _scatter(values, present, lambda compact: crypto.encrypt_array(compact, key))
    return pc.if_else(pc.equal(values, ""), "", encrypted)


RULES: Mapping[MaskRule, Rule] = MappingProxyType(
    {
        MaskRule.KEEP: lambda values, _key, _p: keep(values),
        MaskRule.NULL: lambda values, _key, _p: null(values),
        MaskRule.YEAR: lambda values, _key, _p: year(values),
        MaskRule.MONTH: lambda values, _key, _p: month(values),
        MaskRule.AGE_BAND: lambda values, _key, p: age_band(values, **p),
        MaskRule.PREFECTURE: lambda values, _key, _p: prefecture(values),
        MaskRule.PROVINCE: lambda values, _key, _p: province(values),
        MaskRule.MASK_NAME: lambda values, _key, _p: mask_name(values),
        MaskRule.MASK_KEEP: lambda values, _key, p: mask_keep(values, **p),
        MaskRule.MASK_MOBILE: lambda values, _key, p: mask_mobile(values, **p),
        MaskRule.MASK_ID: lambda values, _key, p: mask_id(values, **p),
        MaskRule.MASK_ADDRESS: lambda values, _key, _p: mask_address(values),
        MaskRule.TOKEN: lambda values, key, p: token(values, _need_key(key, MaskRule.TOKEN), **p),
        MaskRule.ENCRYPT: lambda values, key, _p: encrypt(values, _need_key(key, MaskRule.ENCRYPT)),
    }
)
"""The one place a rule name becomes code; a rule missing here is an error, never a pass-through."""

KEY_KINDS: Mapping[MaskRule, KeyKind] = MappingProxyType(
    {MaskRule.TOKEN: "token", MaskRule.ENCRYPT: "encrypt"}
)
"""Rules that need a keyring key, and the kind of key each needs."""


def apply_rule(rule: MaskRule | str, values: ArrayLike, *, key: Any = None, **params: Any) -> ArrayLike:
    """Apply a rule by its contract name; ``key`` is needed by token and encrypt only."""
    try:
        fn = RULES[MaskRule(rule)]
    except (ValueError, KeyError):
        known = ", ".join(r.value for r in RULES)
        raise MaskRuleError(f"unknown masking rule {rule!r} (known: {known})") from None
    unknown = sorted(set(params) - RULE_PARAMS.get(MaskRule(rule), frozenset()))
    if unknown:
        raise MaskRuleError(f"rule {MaskRule(rule).value!r} takes no parameter(s) {', '.join(unknown)}")
    return fn(values, key, params)


_COMPOUND_KEYS = np.array(
    sorted(
        int.from_bytes(s.encode("utf-8"), "big") for s in COMPOUND_SURNAMES if len(s.encode("utf-8")) == 6
    ),
    dtype=np.uint64,
)
"""Each compound surname's 6 UTF-8 bytes as one integer, for a vectorised lookup."""
_STAR = ord("*")


def _require_string(values: ArrayLike, rule: MaskRule) -> None:
    if not pa.types.is_string(values.type) and not pa.types.is_large_string(values.type):
        raise MaskRuleError(f"rule {rule.value!r} needs a string column, got {values.type}")


def _require_date(values: ArrayLike, rule: MaskRule) -> None:
    if not (pa.types.is_date(values.type) or pa.types.is_timestamp(values.type)):
        raise MaskRuleError(f"rule {rule.value!r} needs a date or timestamp column, got {values.type}")


def _need_key(key: Any, rule: MaskRule) -> Any:
    if key is None:
        raise MaskRuleError(f"rule {rule.value!r} needs a key from the keyring; none was given")
    return key


def _starts_with_any(values: ArrayLike, prefixes: tuple[str, ...]) -> ArrayLike:
    hits = [pc.starts_with(values, p) for p in prefixes]
    combined = hits[0]
    for hit in hits[1:]:
        combined = pc.or_(combined, hit)
    return pc.fill_null(combined, False)


def _scatter(values: ArrayLike, chosen: ArrayLike, fn: Callable[[ArrayLike], ArrayLike]) -> ArrayLike:
    """``fn`` over the chosen rows only, put back in place; null where not chosen."""
    compact = pc.filter(values, chosen)
    done = fn(compact)
    positions = pc.subtract(pc.cumulative_sum(pc.cast(chosen, pa.int64())), 1)
    return pc.take(done, pc.if_else(chosen, positions, None))


def _tokens(compact: ArrayLike, key: KeyLike) -> ArrayLike:
    pieces = [
        _token_strings(chunk.slice(start, _TOKENS_PER_PIECE).cast(pa.binary()).to_pylist(), key)
        for chunk in (compact.chunks if isinstance(compact, pa.ChunkedArray) else [compact])
        for start in range(0, len(chunk), _TOKENS_PER_PIECE)
    ]
    if not pieces:
        return pa.array([], type=pa.string())
    return pieces[0] if len(pieces) == 1 else pa.chunked_array(pieces, type=pa.string())


def _division_prefix(values: ArrayLike, kept: int) -> ArrayLike:
    length = pc.utf8_length(values)
    general = pc.binary_join_element_wise(pc.utf8_slice_codeunits(values, 0, kept), "0" * (6 - kept), "")
    return pc.if_else(pc.equal(length, 6), general, pc.binary_repeat("*", length))


def _per_chunk(values: ArrayLike, fn: Callable[[pa.Array], pa.Array]) -> ArrayLike:
    if isinstance(values, pa.ChunkedArray):
        return pa.chunked_array([fn(chunk) for chunk in values.chunks], type=values.type)
    return fn(values)


def _keep_ends(values: ArrayLike, head: int, tail: int) -> ArrayLike:
    def one(chunk: pa.Array) -> pa.Array:
        text = _Utf8(chunk)
        uniform = text.uniform_ascii_width()
        if uniform is not None:
            return text.starred_uniform(uniform, head, tail)
        long_enough = text.chars > head + tail
        return text.starred(np.where(long_enough, head, 0), np.where(long_enough, tail, 0))

    return _per_chunk(values, one)


def _mask_name_chunk(chunk: pa.Array) -> pa.Array:
    text = _Utf8(chunk)
    three = text.three_byte_only()
    chars = text.lengths // 3 if three else text.chars
    kept = np.where(chars > 1, 1, 0)
    if three:
        candidates = np.flatnonzero(chars > 2)
    else:
        two = text.head_bytes(np.full(len(chars), 2))
        candidates = np.flatnonzero((chars > 2) & (two == 6))
    if len(candidates):
        starts = text.offsets[candidates]
        if three:
            triples = text.data.reshape(-1, 3).astype(np.uint64)
            code = (triples[:, 0] << np.uint64(16)) | (triples[:, 1] << np.uint64(8)) | triples[:, 2]
            first = starts // 3
            packed = (code[first] << np.uint64(24)) | code[first + 1]
        else:
            grid = text.data[starts[:, None] + np.arange(6)].astype(np.uint64)
            shifts = np.array([40, 32, 24, 16, 8, 0], dtype=np.uint64)
            packed = np.bitwise_or.reduce(grid << shifts, axis=1)
        found = np.minimum(np.searchsorted(_COMPOUND_KEYS, packed), len(_COMPOUND_KEYS) - 1)
        kept[candidates[_COMPOUND_KEYS[found] == packed]] = 2
    if three:
        return text.starred_three_byte_head(kept)
    return text.starred(kept, np.zeros_like(kept))


class _Utf8:
    """One string array chunk seen as numpy offsets and bytes.

    A character starts at every byte that is not a UTF-8 continuation byte
    (``10xxxxxx``), so character counts and positions come from one cumulative sum over
    the bytes. Two common cases skip that pass, which costs more than everything else:
    identity and mobile numbers (ASCII, one width) and names written wholly in BMP
    Chinese characters (three bytes each).
    """

    def __init__(self, chunk: pa.Array) -> None:
        self.chunk = chunk
        self.offset_type = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
        _validity, offsets, data = chunk.buffers()
        n = len(chunk)
        raw = np.frombuffer(offsets, dtype=self.offset_type)[chunk.offset : chunk.offset + n + 1]
        all_bytes = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)
        self.data = all_bytes[raw[0] : raw[-1]]
        self.offsets = raw.astype(np.int64) - int(raw[0])
        self.lengths = np.diff(self.offsets)
        self.ascii = not len(self.data) or int(self.data.max()) < 0x80
        self._indexed = False

    def _index(self) -> None:
        if self._indexed:
            return
        self._indexed = True
        if self.ascii:
            self.first_char = self.offsets[:-1]
            self.chars = self.lengths
            return
        is_start = (self.data & 0xC0) != 0x80
        char_index = np.zeros(len(self.data) + 1, dtype=np.int64)
        np.cumsum(is_start, out=char_index[1:])
        self.is_start = is_start
        self.starts = np.flatnonzero(is_start)
        self.first_char = char_index[self.offsets[:-1]]
        self.chars = char_index[self.offsets[1:]] - self.first_char

    def __getattr__(self, name: str) -> Any:
        if name in ("first_char", "chars", "is_start", "starts") and not self.__dict__.get("_indexed"):
            self._index()
            return getattr(self, name)
        raise AttributeError(name)

    def uniform_ascii_width(self) -> int | None:
        """The one length every non-empty row has, if the chunk is ASCII and has one."""
        if not self.ascii or not len(self.data):
            return None
        width = int(self.lengths.max())
        if not bool(((self.lengths == width) | (self.lengths == 0)).all()):
            return None
        return width

    def three_byte_only(self) -> bool:
        """Whether every character is a three-byte UTF-8 sequence (e.g. BMP Chinese)."""
        if self.ascii or len(self.data) % 3 or bool((self.offsets % 3).any()):
            return False
        return bool(((self.data[0::3] & 0xF0) == 0xE0).all())

    def _build(self, offsets: np.ndarray, data: np.ndarray) -> pa.Array:
        chunk = self.chunk
        validity = pc.is_valid(chunk).buffers()[1] if chunk.null_count else None
        return pa.Array.from_buffers(
            chunk.type,
            len(chunk),
            [validity, pa.py_buffer(offsets.astype(self.offset_type)), pa.py_buffer(data)],
            null_count=chunk.null_count,
        )

    def starred_uniform(self, width: int, head: int, tail: int) -> pa.Array:
        """:meth:`starred` for ASCII rows of one width: a 2-D view, one slice assignment."""
        grid = self.data.reshape(-1, width).copy()
        if width > head + tail:
            grid[:, head : width - tail] = _STAR
        else:
            grid[:] = _STAR
        return self._build(self.offsets, grid.reshape(-1))

    def starred_three_byte_head(self, kept: np.ndarray) -> pa.Array:
        """:meth:`starred` with no tail, for rows of three-byte characters only."""
        chars = self.lengths // 3
        new_offsets = np.zeros(len(chars) + 1, dtype=np.int64)
        np.cumsum(chars + 2 * kept, out=new_offsets[1:])
        out = np.full(int(new_offsets[-1]), _STAR, dtype=np.uint8)
        for level in (1, 2):
            rows = np.flatnonzero(kept >= level)
            to = new_offsets[rows] + 3 * (level - 1)
            frm = self.offsets[rows] + 3 * (level - 1)
            for j in range(3):
                out[to + j] = self.data[frm + j]
        return self._build(new_offsets, out)

    def _byte_of_char(self, index: np.ndarray) -> np.ndarray:
        """Byte position of global character ``index`` (the data's end past the last one)."""
        if self.ascii:
            return index
        padded = np.append(self.starts, len(self.data))
        return padded[np.minimum(index, len(self.starts))]

    def head_bytes(self, chars: np.ndarray) -> np.ndarray:
        """Bytes taken by the first ``chars`` characters of each row (capped at the row)."""
        kept = np.minimum(chars, self.chars)
        return self._byte_of_char(self.first_char + kept) - self.offsets[:-1]

    def starred(self, head: np.ndarray, tail: np.ndarray) -> pa.Array:
        """``head`` characters kept, then one ``*`` per hidden character, then ``tail`` kept.

        Works per byte, not per row: a running sum of +1 where a row's hidden part begins and
        -1 where it ends marks the hidden bytes; hidden characters keep only their first
        byte, which becomes ``*``.
        """
        size = len(self.data)
        hide_from = self._byte_of_char(self.first_char + head)
        hide_to = self._byte_of_char(self.first_char + self.chars - tail)
        marks = np.bincount(hide_from, minlength=size + 1) - np.bincount(hide_to, minlength=size + 1)
        hidden = np.cumsum(marks[:size]) > 0
        if self.ascii:
            return self._build(self.offsets, np.where(hidden, np.uint8(_STAR), self.data))
        hidden_start = hidden & self.is_start
        kept = ~hidden | hidden_start
        out = np.where(hidden_start, np.uint8(_STAR), self.data)[kept]
        counted = np.zeros(size + 1, dtype=np.int64)
        np.cumsum(kept, out=counted[1:])
        return self._build(counted[self.offsets], out)


_BLOCK = 64
_IPAD = bytes.maketrans(bytes(range(256)), bytes(b ^ 0x36 for b in range(256)))
_OPAD = bytes.maketrans(bytes(range(256)), bytes(b ^ 0x5C for b in range(256)))
_TOKENS_PER_PIECE = 1 << 20
"""Tokens built per Arrow buffer: 46 MiB at most, far below the 2 GiB of 32-bit offsets."""
_ENCODED = 43  # base64 characters of a 32-byte digest, padding dropped


def _token_strings(values: list[bytes], key: KeyLike) -> pa.Array:
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
