"""The web page at `/`: served from the package by every node, its files only, nothing from another origin."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient

from node.api.app import create_app
from node.api.web import ASSETS, read_asset

SVG_NAMESPACE = "http://www.w3.org/2000/svg"
"""A name in the SVG standard, which the browser never fetches."""


def test_the_page_and_its_files_are_served_with_a_policy_that_allows_only_the_node(tmp_path: Path) -> None:
    client = TestClient(create_app(tmp_path))
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    loaded = set(re.findall(r'(?:src|href)="/web/([^"]+)"', page.text))
    assert loaded == set(ASSETS)
    for name, media_type in ASSETS.items():
        answer = client.get(f"/web/{name}")
        assert answer.status_code == 200 and answer.headers["content-type"].startswith(media_type)
        assert answer.content == read_asset(name)


def test_only_the_pages_own_files_are_served(tmp_path: Path) -> None:
    client = TestClient(create_app(tmp_path))
    for name in ("index.html.bak", "..%2Fapi%2Fweb.py", "nothing.js"):
        answer = client.get(f"/web/{name}")
        assert answer.status_code == 404 and answer.json()["error"] == "not_found"


def test_no_file_of_the_page_names_another_origin() -> None:
    for name in ("index.html", *ASSETS):
        text = read_asset(name).decode().replace(SVG_NAMESPACE, "")
        assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/", text, re.IGNORECASE), name


def test_the_page_reads_the_token_from_session_storage_and_sends_it_as_bearer() -> None:
    script = read_asset("app.js").decode()
    assert "sessionStorage" in script and "localStorage" not in script
    assert '"Bearer " + sessionStorage.getItem(TOKEN_KEY)' in script
    assert "innerHTML" not in script, "ledger data is shown as text, never parsed as HTML"
