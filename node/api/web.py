"""The web page every node serves at `/`: plain HTML, CSS and JavaScript files of the package, no build step.

The page signs in with an API token (kept in the browser's sessionStorage,
so it is gone when the tab closes) and does everything through the node's
own API with it, so it shows only what that token may see and acts only as
that token may. It fetches nothing from anywhere but this node: the answers
carry a Content-Security-Policy that allows only the node's own origin.
"""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter, Response

from node.api.errors import NotFound

router = APIRouter(include_in_schema=False)

ASSETS = {"app.js": "text/javascript", "style.css": "text/css"}
"""The files the page loads, by name, with their media types."""

POLICY = "default-src 'self'; img-src 'self' blob: data:; frame-ancestors 'none'"
"""Nothing is loaded from, nor sent to, any other origin."""


def read_asset(name: str) -> bytes:
    return resources.files("node").joinpath("web", name).read_bytes()


def serve(name: str, media_type: str) -> Response:
    return Response(
        read_asset(name),
        media_type=media_type,
        headers={"content-security-policy": POLICY, "cache-control": "no-cache"},
    )


@router.get("/")
async def get_page() -> Response:
    return serve("index.html", "text/html; charset=utf-8")


@router.get("/web/{name}")
async def get_asset(name: str) -> Response:
    if name not in ASSETS:
        raise NotFound(f"no file {name!r} in the page")
    return serve(name, ASSETS[name])
