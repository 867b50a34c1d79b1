"""docs/opcua.md stays current with the native node map, and names every node of it."""

from __future__ import annotations

from pathlib import Path

from gateway.codec.node_docs import BEGIN, END, render_markdown, update_document
from gateway.codec.node_map import load_node_map
from gateway.settings import DEFAULT_MAPPINGS_DIR

DOC = Path(__file__).resolve().parents[2] / "docs" / "opcua.md"


def test_docs_tables_are_current() -> None:
    text = DOC.read_text(encoding="utf-8")
    generated = render_markdown(load_node_map(DEFAULT_MAPPINGS_DIR, "native"))
    assert update_document(text, generated) == text, (
        "docs/opcua.md is out of date: run `python -m gateway.codec.node_docs --write docs/opcua.md`")


def test_docs_name_every_variable_and_its_node_id_path() -> None:
    text = DOC.read_text(encoding="utf-8")
    node_map = load_node_map(DEFAULT_MAPPINGS_DIR, "native")
    for variable in (*node_map.site, *node_map.pack, *node_map.identity.properties):
        assert f"| {variable.browse_name} |" in text
    for path in ("ns=2;s=site/packs/<pack id>/cells/cell01/voltage", "ns=2;s=site", "urn:bms-gateway:site",
                 "opc.tcp://127.0.0.1:4840/bms-gateway/", "Bad_NoCommunication"):
        assert path in text


def test_update_document_replaces_only_the_generated_part() -> None:
    text = f"intro\n{BEGIN}\nold\n{END}\noutro\n"
    assert update_document(text, "new\n") == f"intro\n{BEGIN}\nnew\n{END}\noutro\n"
