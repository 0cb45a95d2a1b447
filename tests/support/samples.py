"""Synthetic population, legal-entity and certificate records for the quality tests."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pyarrow as pa

from schemas.contract import Contract, load_contract

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
TODAY = date(2025, 6, 1)
# Codes with no validity years in python-stdnum's table (valid at any birth year).
STABLE_DIVISIONS = ("110105", "310104", "440305", "510107", "320102")


def check_char(first17: str) -> str:
    return "10X98765432"[sum(int(d) * w for d, w in zip(first17, WEIGHTS, strict=True)) % 11]


def make_id(division: str, born: date, sequence: int) -> str:
    first17 = f"{division}{born:%Y%m%d}{sequence:03d}"
    return first17 + check_char(first17)


def good_record(rng: random.Random, row: int) -> dict[str, Any]:
    born = date(1930, 1, 1) + timedelta(days=rng.randrange(0, 90 * 365))
    sequence = rng.randrange(1, 999)
    division = rng.choice(STABLE_DIVISIONS)
    return {
        "id_number": make_id(division, born, sequence),
        "name": "张三",
        "gender": "1" if sequence % 2 else "2",
        "ethnicity": "01",
        "birth_date": born,
        "division_code": division,
        "address": "北京市朝阳区",
        "mobile": f"13{rng.randrange(10**9):09d}",
        "registration_status": "1",
        "updated_at": datetime(2025, 5, 1, 8, 0),
        "_row": row,
    }


def to_table(contract: Contract, records: list[dict[str, Any]]) -> pa.Table:
    schema = contract.arrow_schema().append(pa.field("_row", pa.int64()))
    return pa.Table.from_pylist(records, schema=schema)


def population() -> Contract:
    return load_contract("population")


# --- legal entities and certificates ----------------------------------------------------

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
CERT_ROOT = "1.2.156.3005.2"
CERT_TYPE = "11100000000013338W032"  # the defining authority's USCC + sequence (REFERENCE.md)
ISSUER = "11220000013544541J"


def org_check(body: str) -> str:
    """GB 11714 check character of an 8-character organisation code body (scalar reference)."""
    value = sum(int(c, 36) * w for c, w in zip(body, ORG_WEIGHTS, strict=True))
    return "0123456789X0"[11 - value % 11]


def make_uscc(division: str, org_body: str, department: str = "9", kind: str = "1") -> str:
    """A valid USCC: both check characters computed with python-stdnum and the rule above."""
    from stdnum.cn import uscc

    first17 = f"{department}{kind}{division}{org_body}{org_check(org_body)}"
    return first17 + uscc.calc_check_digit(first17)


def make_certificate_id(
    serial: str, *, type_code: str = CERT_TYPE, issuer: str = ISSUER, version: str = "001"
) -> str:
    from stdnum.iso7064 import mod_37_36

    check = mod_37_36.calc_check_digit(type_code + issuer + serial + version)
    return ".".join([CERT_ROOT, type_code, issuer, serial, version, check])


def _org_body(rng: random.Random) -> str:
    return "".join(rng.choice(USCC_ALPHABET) for _ in range(8))


def good_legal_entity(rng: random.Random, row: int) -> dict[str, Any]:
    division = rng.choice(STABLE_DIVISIONS)
    rep = good_record(rng, row)
    return {
        "uscc": make_uscc(division, _org_body(rng)),
        "name": "北京某某科技有限公司",
        "entity_type": "1100",
        "legal_rep_name": rep["name"],
        "legal_rep_id_number": rep["id_number"],
        "registered_capital": Decimal(rng.randrange(1, 10**8)) / 100,
        "establishment_date": date(2001, 1, 1) + timedelta(days=rng.randrange(0, 8000)),
        "registration_authority": "北京市朝阳区市场监督管理局",
        "division_code": division,
        "address": "北京市朝阳区建国路1号",
        "status": "存续",
        "business_scope": "技术开发、技术服务",
        "updated_at": datetime(2025, 5, 1, 8, 0),
        "_row": row,
    }


def good_certificate(rng: random.Random, row: int) -> dict[str, Any]:
    person = rng.random() < 0.5
    holder = good_record(rng, row)["id_number"] if person else make_uscc("440305", _org_body(rng))
    issued = date(2020, 1, 1) + timedelta(days=rng.randrange(0, 1500))
    return {
        "certificate_id": make_certificate_id(f"{rng.randrange(10**7):07d}"),
        "type_name": "营业执照",
        "type_code": CERT_TYPE,
        "number": f"N{rng.randrange(10**9):09d}",
        "holder_name": "张三" if person else "深圳某某有限公司",
        "holder_code": holder,
        "holder_code_type": "111" if person else "001",
        "issuer_name": "吉林省市场监督管理厅",
        "issuer_code": ISSUER,
        "issue_date": issued,
        "valid_from": issued,
        "valid_until": None if rng.random() < 0.3 else issued + timedelta(days=3650),
        "division_code": "220000" if rng.random() < 0.5 else "110105",
        "status": "有效",
        "updated_at": datetime(2025, 5, 1, 8, 0),
        "_row": row,
    }


def legal_entity() -> Contract:
    return load_contract("legal_entity")


def certificate() -> Contract:
    return load_contract("certificate")
