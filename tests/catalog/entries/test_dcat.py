"""Catalogue exports: the JSON export validates against its shipped JSON Schema, and the DCAT
export is real JSON-LD (parsed by rdflib into triples)."""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonschema
import pytest
import rdflib
from rdflib import namespace as ns

from catalog.entries import (
    ACCESS_RIGHT,
    FREQUENCY,
    SCHEMA_PATH,
    Catalogue,
    export_dcat,
    export_json,
    json_schema,
)
from tests.support.catalogue import STEWARD, Hub

BASE = "https://data.example.gov.cn/catalogue/"


def validator() -> jsonschema.Draft202012Validator:
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


@pytest.fixture
def published(hub: Hub, published_rows: Any, population: Any) -> Catalogue:
    snapshot = hub.tables.commit(population, published_rows(12, "b1"), batch_id="b1", mode="upsert")
    hub.store.start_batch(
        "b1", dataset="population", source="population", contract_version="1.0.0", rows_in=12
    )
    hub.store.update_batch(
        "b1", status="registered", snapshot_id=snapshot, rows_valid=12, rows_quarantined=0, k_anonymity=5
    )
    catalogue = Catalogue(hub.store, tables=hub.tables)
    for dataset in ("population", "legal_entity", "certificate"):
        catalogue.publish(dataset, by=STEWARD, note="first release")
    return catalogue


def test_the_json_export_validates_against_its_schema(published: Catalogue) -> None:
    document = json.loads(json.dumps(export_json(published.entries()), default=str))
    validator().validate(document)
    entries = {e["dataset"]: e for e in document["entries"]}
    assert set(entries) == {"population", "legal_entity", "certificate"}
    assert entries["population"]["facts"]["k_anonymity"] == 5
    assert entries["population"]["facts"]["rows"] == 12
    assert entries["population"]["content"]["message_schema"]["title"] == "population 1.0.0"
    assert SCHEMA_PATH.is_file() and SCHEMA_PATH.parent.name == "entries"  # shipped with the package


@pytest.mark.parametrize(
    ("damage", "path"),
    [
        (lambda e: e["content"].update(share_condition=None), "share_condition"),
        (lambda e: e["content"].update(update_cycle="hourly"), "update_cycle"),
        (lambda e: e["content"]["items"][0].pop("data_type"), "data_type"),
        (lambda e: e["content"].update(resource_code="1/1"), "resource_code"),
        (lambda e: e.update(status="archived"), "status"),
    ],
)
def test_the_schema_rejects_a_broken_export(published: Catalogue, damage: Any, path: str) -> None:
    document = json.loads(json.dumps(export_json(published.entries()), default=str))
    broken = copy.deepcopy(document)
    damage(next(e for e in broken["entries"] if e["dataset"] == "population"))
    errors = list(validator().iter_errors(broken))
    assert errors and any(
        path in json.dumps([*list(e.absolute_path), e.message], ensure_ascii=False) for e in errors
    )


def test_the_dcat_export_is_json_ld_with_one_dataset_per_published_entry(published: Catalogue) -> None:
    document = export_dcat(published.published(), base_uri=BASE)
    graph = rdflib.Graph().parse(data=json.dumps(document, ensure_ascii=False), format="json-ld")

    catalogues = list(graph.subjects(ns.RDF.type, ns.DCAT.Catalog))
    datasets = set(graph.subjects(ns.RDF.type, ns.DCAT.Dataset))
    assert len(catalogues) == 1 and len(datasets) == 3
    assert set(graph.objects(catalogues[0], ns.DCAT.dataset)) == datasets
    population = rdflib.URIRef(BASE + "dataset/population")
    assert population in datasets
    identifiers = {str(graph.value(d, ns.DCTERMS.identifier)) for d in datasets}
    assert identifiers == {"101001/000001", "102001/000001", "105001/000001"}
    publisher = graph.value(population, ns.DCTERMS.publisher)
    assert str(graph.value(publisher, ns.FOAF.name)) == "公安厅"
    assert graph.value(population, ns.DCTERMS.accrualPeriodicity) == rdflib.URIRef(FREQUENCY + "DAILY")
    assert graph.value(population, ns.DCTERMS.accessRights) == rdflib.URIRef(ACCESS_RIGHT + "RESTRICTED")
    legal = rdflib.URIRef(BASE + "dataset/legal_entity")
    assert graph.value(legal, ns.DCTERMS.accessRights) == rdflib.URIRef(ACCESS_RIGHT + "PUBLIC")
    titles = {(str(t), t.language) for t in graph.objects(population, ns.DCTERMS.title)}
    assert ("人口基础信息", "zh") in titles and ("Population basic information", "en") in titles
    assert "户籍" in {str(k) for k in graph.objects(population, ns.DCAT.keyword)}
    distributions = list(graph.objects(population, ns.DCAT.distribution))
    assert len(distributions) == 3
    assert all((d, ns.RDF.type, ns.DCAT.Distribution) in graph for d in distributions)
    assert set(graph.objects(population, ns.DCTERMS.relation)) == {
        legal,
        rdflib.URIRef(BASE + "dataset/certificate"),
    }
    issued = graph.value(population, ns.DCTERMS.issued)
    assert issued is not None and issued.datatype == rdflib.XSD.date
    assert graph.value(population, ns.DCTERMS.modified) is not None  # the last registered batch


def test_drafts_are_not_in_the_dcat_export(hub: Hub) -> None:
    catalogue = Catalogue(hub.store)
    catalogue.publish("legal_entity", by=STEWARD)
    document = export_dcat(catalogue.published())
    graph = rdflib.Graph().parse(data=json.dumps(document, ensure_ascii=False), format="json-ld")
    datasets = list(graph.subjects(ns.RDF.type, ns.DCAT.Dataset))
    assert [str(graph.value(d, ns.DCTERMS.identifier)) for d in datasets] == ["102001/000001"]
    assert str(datasets[0]) == "urn:gov-data-hub:dataset:legal_entity"
