"""One row per defect kind the quality gate must catch, with the rules each must get."""

from __future__ import annotations

import random
from datetime import date
from typing import Any

from tests.support.samples import good_record, make_id

ROW_BASE = 5000  # _row numbers differ from positions, so results must come from _row


def defects() -> tuple[list[dict[str, Any]], dict[int, set[str]]]:
    """One row per defect kind between good rows, and the rule codes each bad row must get."""
    rng = random.Random(7)
    twin = make_id("310104", date(1985, 3, 4), 11)
    female = make_id("110105", date(1960, 7, 8), 24)
    cases: list[tuple[dict[str, Any], set[str]]] = [
        ({}, set()),
        ({"id_number": None}, {"required"}),
        ({"id_number": ""}, {"required"}),
        ({"id_number": "11010519491231002x"}, {"gb11643.format"}),
        ({"id_number": "110105194912310021", "birth_date": date(1949, 12, 31)}, {"gb11643.check_digit"}),
        (
            {"id_number": make_id("110105", date(1949, 1, 1), 11).replace("19490101", "19490230")[:17] + "0"},
            {"gb11643.birth_date", "gb11643.check_digit", "id_birth_date"},
        ),
        (
            {
                "id_number": make_id("110199", date(1970, 1, 1), 11),
                "birth_date": date(1970, 1, 1),
                "gender": "1",
            },
            {"gb11643.division"},
        ),
        (
            {
                "id_number": make_id("110105", date(1970, 1, 1), 11),
                "birth_date": date(1970, 1, 2),
                "gender": "1",
            },
            {"id_birth_date"},
        ),
        ({"id_number": female, "birth_date": date(1960, 7, 8), "gender": "1"}, {"id_gender"}),
        ({"gender": "3"}, {"code_list"}),
        ({"ethnicity": "99"}, {"code_list"}),
        ({"division_code": "999999"}, {"gb2260"}),
        ({"mobile": "12345"}, {"mobile_cn"}),
        ({"name": None}, {"required"}),
        ({"name": "  "}, {"required"}),
        ({"registration_status": "5"}, {"code_list"}),
        ({"updated_at": None}, {"required"}),
        ({"birth_date": None}, {"required"}),
        ({"ethnicity": None, "address": None, "mobile": None}, set()),
        ({"mobile": ""}, set()),
        (
            {
                "id_number": make_id("810000", date(1990, 1, 1), 11),
                "birth_date": date(1990, 1, 1),
                "gender": "1",
            },
            set(),
        ),
        ({"id_number": twin, "birth_date": date(1985, 3, 4), "gender": "1"}, {"key.duplicate"}),
        ({"id_number": twin, "birth_date": date(1985, 3, 4), "gender": "1"}, {"key.duplicate"}),
        ({"mobile": "999", "gender": "3", "name": ""}, {"mobile_cn", "code_list", "required"}),
        ({}, set()),
    ]
    records, expected = [], {}
    for position, (change, rules) in enumerate(cases):
        record = good_record(rng, ROW_BASE + position)
        record.update(change)
        records.append(record)
        if rules:
            expected[ROW_BASE + position] = rules
    return records, expected
