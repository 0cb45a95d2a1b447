"""Exports of the catalogue: the hub's own JSON, and DCAT JSON-LD for open-data portals.

The JSON export is every entry's current version with its state and live facts; its shape is
the JSON Schema shipped beside this module (``catalogue.schema.json``). The DCAT export
(W3C DCAT 3 in JSON-LD, with the EU frequency and access-right vocabularies portals expect)
holds the published version of each published entry: what consumers may see.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from catalog.metadata import utcnow

if TYPE_CHECKING:
    from catalog.entries.views import EntryView

SCHEMA_PATH = Path(__file__).resolve().parent / "catalogue.schema.json"
SCHEMA_ID = "https://gov-data-hub.invalid/schemas/catalogue-export/1.json"
DEFAULT_BASE_URI = "urn:gov-data-hub:"
"""Base of the IRIs of the DCAT export; a portal sets its own (``--base-uri``)."""

FREQUENCY = "http://publications.europa.eu/resource/authority/frequency/"
FREQUENCIES = {
    "real_time": "UPDATE_CONT",
    "daily": "DAILY",
    "weekly": "WEEKLY",
    "ten_days": "TRIDECADAL",
    "monthly": "MONTHLY",
    "quarterly": "QUARTERLY",
    "yearly": "ANNUAL",
}
"""Update cycles as EU frequency concepts (every ten days, 每旬, is three times a month)."""
ACCESS_RIGHT = "http://publications.europa.eu/resource/authority/access-right/"
ACCESS_RIGHTS = {"无条件共享": "PUBLIC", "有条件共享": "RESTRICTED", "不予共享": "NON_PUBLIC"}
"""Share types as EU access rights; within the government network, as the regulation means them."""
MEDIA_JSON = "https://www.iana.org/assignments/media-types/application/json"

CONTEXT = {
    "dcat": "http://www.w3.org/ns/dcat#",
    "dct": "http://purl.org/dc/terms/",
    "foaf": "http://xmlns.com/foaf/0.1/",
    "skos": "http://www.w3.org/2004/02/skos/core#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "hub": "https://gov-data-hub.invalid/ns#",
}


def export_json(entries: list[EntryView], *, now: datetime | None = None) -> dict[str, Any]:
    """The whole catalogue: every entry's current version, its state and facts."""
    return {
        "$schema": SCHEMA_ID,
        "generated_at": (now or utcnow()).isoformat(),
        "entries": [e.to_json() for e in entries],
    }


def json_schema() -> dict[str, Any]:
    """The JSON Schema of :func:`export_json` documents."""
    return dict(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))


def _text(zh: str | None, en: str | None) -> list[dict[str, str]]:
    return [{"@value": v, "@language": lang} for v, lang in ((zh, "zh"), (en, "en")) if v]


def _iri(base: str, *parts: str) -> str:
    return (
        base + ":".join(quote(p, safe="") for p in parts)
        if base.startswith("urn:")
        else (base.rstrip("/") + "/" + "/".join(quote(p, safe="") for p in parts))
    )


def export_dcat(
    published: list[EntryView],
    *,
    base_uri: str = DEFAULT_BASE_URI,
    title: tuple[str, str] = ("政务数据共享目录", "Government data-sharing catalogue"),
    now: datetime | None = None,
) -> dict[str, Any]:
    """A dcat:Catalog of the published entries as JSON-LD (inline context: no fetching)."""
    by_code = {e.content.resource_code: e.dataset for e in published if e.content.resource_code}
    datasets = [_dataset(e, base_uri, by_code) for e in published]
    return {
        "@context": CONTEXT,
        "@id": _iri(base_uri, "catalogue"),
        "@type": "dcat:Catalog",
        "dct:title": _text(*title),
        "dct:modified": {"@value": (now or utcnow()).isoformat(), "@type": "xsd:dateTime"},
        "dct:publisher": {"@id": _iri(base_uri, "hub"), "@type": "foaf:Agent", "foaf:name": title[0]},
        "dcat:dataset": datasets,
    }


def _dataset(entry: EntryView, base: str, by_code: dict[str, str]) -> dict[str, Any]:
    c = entry.content
    share = {"@id": ACCESS_RIGHT + ACCESS_RIGHTS.get(c.share_type, "NON_PUBLIC")}
    rights = "；".join(filter(None, (c.share_type, c.share_condition, c.legal_basis)))
    node: dict[str, Any] = {
        "@id": _iri(base, "dataset", c.dataset),
        "@type": "dcat:Dataset",
        "dct:identifier": c.resource_code or c.dataset,
        "dct:title": _text(c.resource_name, c.resource_name_en),
        "dct:description": _text(c.abstract, c.abstract_en),
        "dct:publisher": {
            "@id": _iri(base, "department", c.provider_code),
            "@type": "foaf:Agent",
            "foaf:name": c.provider,
            "dct:identifier": c.provider_code,
        },
        "dct:accrualPeriodicity": {"@id": FREQUENCY + FREQUENCIES[c.update_cycle.value]},
        "dcat:keyword": list(c.keywords),
        "dct:accessRights": share,
        "dct:rights": {"@type": "dct:RightsStatement", "rdfs:label": rights},
        "hub:shareType": c.share_type,
        "hub:openAttribute": c.open_attribute.value,
        "dcat:version": f"{entry.version}",
        "hub:contractVersion": c.contract_version,
        "dcat:theme": {
            "@id": _iri(base, "classification", _classification(c.class_code, c.item_code, c.catalogue_code)),
            "@type": "skos:Concept",
            "skos:notation": _classification(c.class_code, c.item_code, c.catalogue_code),
            "skos:prefLabel": " / ".join(filter(None, (c.class_name, c.item_name, c.catalogue_name))),
        },
        "dct:relation": [
            {"@id": _iri(base, "dataset", by_code[code])}
            if code in by_code
            else {"@id": _iri(base, "resource", code)}
            for code in c.related_codes
        ],
        "dcat:distribution": [_distribution(entry, base, method) for method in c.share_methods],
    }
    if c.publication_date:
        node["dct:issued"] = {"@value": c.publication_date.isoformat(), "@type": "xsd:date"}
    if entry.facts and entry.facts.last_batch_at:
        node["dct:modified"] = {"@value": entry.facts.last_batch_at.isoformat(), "@type": "xsd:dateTime"}
    return node


def _classification(*codes: str | None) -> str:
    return "".join(c or "" for c in codes) or "unclassified"


def _distribution(entry: EntryView, base: str, method: Any) -> dict[str, Any]:
    c = entry.content
    node: dict[str, Any] = {
        "@id": _iri(base, "dataset", c.dataset, "distribution", method.value),
        "@type": "dcat:Distribution",
        "dct:title": _text(
            f"{c.resource_name}（{method.zh}）", f"{c.resource_name_en} ({method.value.replace('_', ' ')})"
        ),
        "hub:shareMethod": method.value,
        "dct:format": c.format or "",
    }
    if method.value == "system_interface":
        node["dcat:mediaType"] = {"@id": MEDIA_JSON}
        node["dct:conformsTo"] = {"@id": _iri(base, "schema", c.dataset, c.contract_version)}
    return node
