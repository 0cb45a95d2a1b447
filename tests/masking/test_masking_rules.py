from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Sequence
from datetime import date, datetime

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from masking import rules
from masking.errors import MaskRuleError
from masking.keys import Secret, TokenKey
from masking.rules import (
    RULES,
    apply_rule,
    mask_address,
    mask_id,
    mask_mobile,
    mask_name,
    token,
)
from schemas.contract import MaskRule
from schemas.errors import ContractError

KEY_A = TokenKey(version=1, secret=Secret(b"\x11" * 32))
KEY_B = TokenKey(version=1, secret=Secret(b"\x22" * 32))


def _strings(values: Sequence[str | None]) -> pa.Array:
    return pa.array(values, type=pa.string())


def _reference_token(value: str, key: TokenKey) -> str:
    digest = hmac.new(key.secret.reveal(), value.encode("utf-8"), hashlib.sha256).digest()
    return f"k{key.version}_" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def test_registry_covers_every_rule() -> None:
    assert set(RULES) == set(MaskRule)


def test_unknown_rule_is_a_contract_error() -> None:
    with pytest.raises(MaskRuleError) as caught:
        apply_rule("shuffle", _strings(["a"]))
    assert isinstance(caught.value, ContractError)
    assert "shuffle" in str(caught.value)


def test_rule_registry_entry_missing_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rules, "RULES", {MaskRule.KEEP: RULES[MaskRule.KEEP]})
    with pytest.raises(MaskRuleError):
        apply_rule(MaskRule.MASK_NAME, _strings(["张三"]))


@pytest.mark.parametrize("rule", [MaskRule.TOKEN, MaskRule.MASK_NAME, MaskRule.MASK_MOBILE, MaskRule.MASK_ID])
def test_string_rules_refuse_other_types(rule: MaskRule) -> None:
    with pytest.raises(MaskRuleError, match=rule.value):
        apply_rule(rule, pa.array([1, 2]), key=KEY_A)


def test_token_rule_without_key_is_an_error() -> None:
    with pytest.raises(MaskRuleError, match="key"):
        apply_rule(MaskRule.TOKEN, _strings(["a"]))


# --- token -----------------------------------------------------------------------------


def test_token_matches_hmac_sha256_and_carries_version() -> None:
    values = ["11010519491231002X", "440524188001010014", "张三"]
    out = token(_strings(values), KEY_A).to_pylist()
    assert out == [_reference_token(v, KEY_A) for v in values]
    assert all(re.fullmatch(r"k1_[A-Za-z0-9_-]{43}", t) for t in out)


def test_token_is_not_a_bare_hash() -> None:
    value = "11010519491231002X"
    (tok,) = token(_strings([value]), KEY_A).to_pylist()
    bare = hashlib.sha256(value.encode()).digest()
    body = tok.split("_", 1)[1]
    assert body != base64.urlsafe_b64encode(bare).rstrip(b"=").decode()
    assert bare.hex() not in tok


def test_token_is_stable_across_calls_and_chunking() -> None:
    values = ["a", "b", "a", "c"]
    first = token(_strings(values), KEY_A).to_pylist()
    second = token(pa.chunked_array([["c", "a"], ["b"], [], ["a", "c"]]), KEY_A).to_pylist()
    assert first[0] == first[2]
    assert second == [first[3], first[0], first[1], first[0], first[3]]


def test_token_differs_across_keys_and_versions() -> None:
    value = _strings(["11010519491231002X"])
    same_material_v2 = TokenKey(version=2, secret=KEY_A.secret)
    a = token(value, KEY_A)[0].as_py()
    b = token(value, KEY_B)[0].as_py()
    v2 = token(value, same_material_v2)[0].as_py()
    assert a != b
    assert v2.startswith("k2_") and a.startswith("k1_")
    assert len({a, b, v2}) == 3


def test_token_nulls_and_empty_strings_give_null() -> None:
    out = token(_strings([None, "", "x", None, "", "y"]), KEY_A).to_pylist()
    assert out == [None, None, _reference_token("x", KEY_A), None, None, _reference_token("y", KEY_A)]


def test_token_of_nothing_present() -> None:
    assert token(_strings([None, ""]), KEY_A).to_pylist() == [None, None]
    assert token(_strings([]), KEY_A).to_pylist() == []


def test_token_across_many_buffers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rules, "_TOKENS_PER_PIECE", 3)
    values = [f"id{i}" if i % 4 else None for i in range(20)]
    out = token(_strings(values), KEY_A).to_pylist()
    assert out == [None if v is None else _reference_token(v, KEY_A) for v in values]


def test_token_handles_long_keys() -> None:
    long_key = TokenKey(version=3, secret=Secret(bytes(range(100))))
    assert token(_strings(["v"]), long_key).to_pylist() == [_reference_token("v", long_key)]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(min_size=1)), max_size=20))
def test_token_property_equals_stdlib_hmac(values: list[str | None]) -> None:
    out = token(_strings(values), KEY_B).to_pylist()
    assert out == [None if v is None else _reference_token(v, KEY_B) for v in values]


# --- display masks -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "masked"),
    [
        ("张三", "张*"),
        ("张三丰", "张**"),
        ("欧阳娜娜", "欧阳**"),
        ("欧阳修", "欧阳*"),
        ("司马光", "司马*"),
        ("诸葛亮", "诸葛*"),
        ("上官婉儿", "上官**"),
        ("令狐冲", "令狐*"),
        ("欧阳", "欧*"),  # a surname alone is not a person: read as 欧 + 阳
        ("李", "*"),
        ("", ""),
        (None, None),
        ("阿依古丽·买买提", "阿*******"),
    ],
)
def test_mask_name(name: str | None, masked: str | None) -> None:
    assert mask_name(_strings([name])).to_pylist() == [masked]


@given(st.text(min_size=2, max_size=12))
def test_mask_name_keeps_length_and_hides_the_rest(name: str) -> None:
    (masked,) = mask_name(_strings([name])).to_pylist()
    assert len(masked) == len(name)
    kept = 2 if name[:2] in rules.COMPOUND_SURNAMES and len(name) > 2 else 1
    assert masked == name[:kept] + "*" * (len(name) - kept)


@pytest.mark.parametrize(
    ("mobile", "masked"),
    [
        ("13812348000", "138****8000"),
        ("+8613812348000", "+86*******8000"),
        ("12345678", "123*5678"),
        ("1234567", "*******"),
        ("110", "***"),
        ("", ""),
        (None, None),
    ],
)
def test_mask_mobile(mobile: str | None, masked: str | None) -> None:
    assert mask_mobile(_strings([mobile])).to_pylist() == [masked]


@pytest.mark.parametrize(
    ("number", "masked"),
    [
        ("11010519491231002X", "110105********002X"),
        ("440524188001010014", "440524********0014"),
        ("110105491231002", "110105*****1002"),
        ("1234567890", "**********"),
        ("", ""),
        (None, None),
    ],
)
def test_mask_id(number: str | None, masked: str | None) -> None:
    assert mask_id(_strings([number])).to_pylist() == [masked]


@pytest.mark.parametrize(
    ("address", "masked"),
    [
        ("广东省深圳市南山区科技路12号", "广东省深圳市南山区"),
        ("北京市东城区东华门街道1号", "北京市东城区"),
        ("上海市浦东新区世纪大道100号", "上海市浦东新区"),
        ("重庆市城口县葛城街道", "重庆市城口县"),
        ("江苏省苏州市昆山市玉山镇1号", "江苏省苏州市昆山市"),
        ("山东省济南市市中区经七路", "山东省济南市市中区"),
        ("安徽省宿州市萧县龙城镇", "安徽省宿州市萧县"),
        ("广西壮族自治区南宁市青秀区民族大道", "广西壮族自治区南宁市青秀区"),
        ("内蒙古自治区呼和浩特市土默特左旗察素齐镇", "内蒙古自治区呼和浩特市土默特左旗"),
        ("新疆维吾尔自治区阿克苏地区库车市天山路1号", "新疆维吾尔自治区阿克苏地区库车市"),
        ("四川省凉山彝族自治州西昌市长安街", "四川省凉山彝族自治州西昌市"),
        ("深圳市南山区粤海街道", "深圳市南山区"),
        ("湖北省仙桃市沙嘴街道1号", "***"),  # no county-level unit: hidden whole
        ("科技路12号", "***"),
        ("12号楼3单元", "***"),
        ("", ""),
        (None, None),
    ],
)
def test_mask_address(address: str | None, masked: str | None) -> None:
    assert mask_address(_strings([address])).to_pylist() == [masked]


@given(st.text(alphabet="省市区县旗路号街道镇村0123456789 东南西北中山华京海", max_size=25))
def test_mask_address_never_keeps_a_digit_or_invents_text(address: str) -> None:
    (masked,) = mask_address(_strings([address])).to_pylist()
    if address == "":
        assert masked == ""
    else:
        assert masked == "***" or (address.startswith(masked) and masked[-1] in "区县旗市")
        assert not re.search(r"[0-9]", masked)


# --- year, keep, null ---------------------------------------------------------------------


def test_year_of_dates_and_timestamps() -> None:
    dates = pa.array([date(1949, 12, 31), None], type=pa.date32())
    stamps = pa.array([datetime(2024, 1, 1, 0, 0), None], type=pa.timestamp("us"))
    for values in (dates, stamps):
        out = apply_rule(MaskRule.YEAR, values)
        assert out.type == pa.int32()
    assert apply_rule(MaskRule.YEAR, dates).to_pylist() == [1949, None]
    assert apply_rule(MaskRule.YEAR, stamps).to_pylist() == [2024, None]


def test_year_refuses_strings() -> None:
    with pytest.raises(MaskRuleError, match="year"):
        apply_rule(MaskRule.YEAR, _strings(["1949"]))


def test_keep_and_null() -> None:
    values = _strings(["1", None, ""])
    assert apply_rule(MaskRule.KEEP, values).to_pylist() == ["1", None, ""]
    nulled = apply_rule(MaskRule.NULL, values)
    assert nulled.type == pa.string()
    assert nulled.to_pylist() == [None, None, None]
    assert apply_rule("null", pa.array([date(2000, 1, 1)])).type == pa.date32()


# -- parameters, generalisations, numpy display masks -------------------------------------


def _reference_keep_ends(value: str | None, head: int, tail: int) -> str | None:
    if value is None:
        return None
    if len(value) <= head + tail:
        return "*" * len(value)
    return value[:head] + "*" * (len(value) - head - tail) + value[len(value) - tail :]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.one_of(st.none(), st.text(max_size=12)), max_size=30),
    st.integers(0, 4),
    st.integers(0, 4),
    st.integers(0, 3),
)
def test_mask_keep_equals_a_plain_python_reference(
    values: list[str | None], head: int, tail: int, cut: int
) -> None:
    array = pa.array(values, type=pa.string()).slice(min(cut, len(values)))
    out = apply_rule(MaskRule.MASK_KEEP, array, first=head, last=tail)
    assert out.to_pylist() == [_reference_keep_ends(v, head, tail) for v in array.to_pylist()]


def test_display_masks_take_configured_ends_and_keep_large_strings() -> None:
    assert apply_rule("mask_mobile", _strings(["13812348000"]), first=0, last=2).to_pylist() == [
        "*********00"
    ]
    assert apply_rule("mask_id", _strings(["11010519491231002X"]), first=3, last=1).to_pylist() == [
        "110**************X"
    ]
    large = pa.array(["张三丰", None], type=pa.large_string())
    out = apply_rule(MaskRule.MASK_NAME, large)
    assert out.type == pa.large_string() and out.to_pylist() == ["张**", None]


def test_mask_name_handles_mixed_scripts_and_chunks() -> None:
    chunked = pa.chunked_array([["欧阳娜娜", "Ö𝄞x"], ["欧阳", None, ""]])
    assert apply_rule(MaskRule.MASK_NAME, chunked).to_pylist() == ["欧阳**", "Ö**", "欧*", None, ""]


def test_unknown_parameter_is_a_contract_error() -> None:
    with pytest.raises(ContractError):
        apply_rule(MaskRule.MASK_NAME, _strings(["张三"]), first=1)


def test_month_is_text_year_dash_month() -> None:
    values = pa.array([date(1990, 3, 7), None], type=pa.date32())
    assert apply_rule(MaskRule.MONTH, values).to_pylist() == ["1990-03", None]
    stamps = pa.array([datetime(2024, 11, 2, 8)], type=pa.timestamp("us"))
    assert apply_rule(MaskRule.MONTH, stamps).to_pylist() == ["2024-11"]


def test_age_band_counts_full_years_at_the_reference_date() -> None:
    born = pa.array([date(1990, 1, 1), date(1990, 1, 2), date(2024, 6, 1), date(2030, 1, 1), None])
    ref = date(2020, 1, 1)
    assert apply_rule(MaskRule.AGE_BAND, born, reference=ref).to_pylist() == [
        "30-39",
        "20-29",
        "0-9",
        "0-9",
        None,
    ]
    assert apply_rule(MaskRule.AGE_BAND, born, reference=ref, width=5).to_pylist()[:2] == ["30-34", "25-29"]


def test_prefecture_and_province() -> None:
    codes = _strings(["440305", "", None, "4403"])
    assert apply_rule(MaskRule.PREFECTURE, codes).to_pylist() == ["440300", "", None, "****"]
    assert apply_rule(MaskRule.PROVINCE, codes).to_pylist() == ["440000", "", None, "****"]


def test_token_only_prefixes_keeps_other_values() -> None:
    values = _strings(["92440300MA5ABCDE10", "91110000600037341L", None, ""])
    out = apply_rule(MaskRule.TOKEN, values, key=KEY_A, only_prefixes=("92",)).to_pylist()
    assert out[0] == apply_rule(MaskRule.TOKEN, values.slice(0, 1), key=KEY_A).to_pylist()[0]
    assert out[1:] == ["91110000600037341L", None, ""]


def test_encrypt_uses_the_encrypt_key_and_keeps_empty_strings(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from masking.crypto import decrypt_array
    from masking.keys import Keyring

    monkeypatch.delenv("HUB_MASTER_KEY", raising=False)
    keyring = Keyring.init(tmp_path / "keys" / "keyring.json")
    key = keyring.current_key("encrypt")
    out = apply_rule(MaskRule.ENCRYPT, _strings(["广东省深圳市", None, ""]), key=key)
    assert out[0].as_py().startswith(key.prefix) and out.to_pylist()[1:] == [None, ""]
    assert decrypt_array(out.slice(0, 1), keyring).to_pylist() == ["广东省深圳市"]
    with pytest.raises(ContractError):
        apply_rule(MaskRule.ENCRYPT, _strings(["x"]))
