"""``GET /openapi.json`` on both listeners: every route the apps have is documented
(and nothing else), and the documents are well-formed OpenAPI 3.1."""

from __future__ import annotations

import re
from typing import Any

import pytest
import trio
from quart_trio import QuartTrio

from leosuite.api.admin.app import create_admin_app
from leosuite.api.http.app import create_http_app
from leosuite.api.openapi import admin_document, http_document
from tests.helpers.daemon import RunningDaemon

METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
_CONVERTER = re.compile(r"<(?:[a-z]+:)?([A-Za-z_][A-Za-z0-9_]*)>")


def routes(app: QuartTrio, *, admin: bool) -> set[tuple[str, str]]:
    """``{(openapi path, method)}`` of the app's url_map; the admin API's ``/api/`` and
    trailing-slash duplicates are left out (they serve the same views)."""
    found: set[tuple[str, str]] = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.endpoint.startswith("web."):
            continue  # static files and the dashboard's pages are not API
        path = rule.rule
        if admin and (path.startswith("/api/") or (path.endswith("/") and path != "/")):
            continue
        path = _CONVERTER.sub(r"{\1}", path)
        for method in rule.methods or ():
            if method not in ("HEAD", "OPTIONS"):
                found.add((path, method.lower()))
    return found


def documented(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(path, method) for path, item in doc["paths"].items() for method in item}


def mismatch(app: QuartTrio, doc: dict[str, Any], *, admin: bool) -> dict[str, list[str]]:
    served, listed = routes(app, admin=admin), documented(doc)
    return {
        "undocumented": sorted(f"{m.upper()} {p}" for p, m in served - listed),
        "not served": sorted(f"{m.upper()} {p}" for p, m in listed - served),
    }


def resolve(doc: dict[str, Any], pointer: str) -> Any:
    assert pointer.startswith("#/"), pointer
    node: Any = doc
    for part in pointer[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict), pointer
        assert part in node, f"unresolved $ref {pointer}"
        node = node[part]
    return node


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in refs(value)]
    return []


def check_structure(doc: dict[str, Any]) -> None:
    assert doc["openapi"] == "3.1.0"
    assert doc["info"]["title"]
    assert doc["info"]["version"]
    for pointer in refs(doc):
        resolve(doc, pointer)
    schemes = doc["components"]["securitySchemes"]
    operation_ids: list[str] = []
    for path, item in doc["paths"].items():
        assert path.startswith("/"), path
        template_params = set(re.findall(r"{([^}]+)}", path))
        assert set(item) <= METHODS, (path, set(item))
        for method, op in item.items():
            where = f"{method.upper()} {path}"
            operation_ids.append(op["operationId"])
            params = op.get("parameters", [])
            in_path = {p["name"] for p in params if p["in"] == "path"}
            assert in_path == template_params, where
            for param in params:
                assert param["in"] in ("path", "query", "header", "cookie"), where
                assert param["required"] is True or param["in"] != "path", where
                assert "schema" in param, where
            body = op.get("requestBody")
            if body is not None:
                assert method in ("post", "put", "patch"), where
                assert set(body["content"]) == {"application/json"}, where
                assert "schema" in body["content"]["application/json"], where
            for requirement in op.get("security", doc.get("security", [])):
                assert set(requirement) <= set(schemes), where
            responses = op["responses"]
            assert responses, where
            assert any(code.startswith("2") for code in responses), where
            for code, answer in responses.items():
                assert re.fullmatch(r"[1-5][0-9][0-9]", code), (where, code)
                assert answer["description"], (where, code)
                if code.startswith(("4", "5")):
                    assert "content" in answer, (where, code)
    assert len(operation_ids) == len(set(operation_ids)), "operationIds must be unique"


def test_documents_are_valid_openapi_31() -> None:
    check_structure(http_document())
    check_structure(http_document(servers=False))
    check_structure(admin_document())


def test_error_shapes_are_documented() -> None:
    http, admin = http_document(), admin_document()
    error = http["components"]["schemas"]["Error"]
    assert set(error["required"]) == {"error_type", "error_message"}
    rooms_error = http["components"]["schemas"]["RoomsError"]
    assert set(rooms_error["required"]) == {"status", "error_type", "text"}
    admin_error = admin["components"]["schemas"]["AdminError"]
    assert set(admin_error["required"]) == {"status", "message"}
    login = http["paths"]["/api/auth/login"]["post"]
    assert login["responses"]["400"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"
    }
    assert http["paths"]["/api/server_list"]["post"]["security"] == [{"bearer": []}]
    assert http["paths"]["/api/health"]["get"]["security"] == []
    assert admin["security"] == [{"basic": []}, {"bearer": []}]
    assert admin["paths"]["/openapi.json"]["get"]["security"] == []

    # Request bodies come from the handlers' Structs (unknown fields refused), but the
    # settings take other names too (ignored and listed in the answer).
    def body(path: str, method: str) -> Any:
        content = admin["paths"][path][method]["requestBody"]["content"]
        return resolve(admin, content["application/json"]["schema"]["$ref"])

    change = body("/accounts/{account_id}", "put")
    assert change["additionalProperties"] is False
    assert "admin" in change["properties"]
    patch = body("/server", "put")
    assert patch["additionalProperties"] is True
    assert {"sessionCountLimit", "persistence", "archive"} <= set(patch["properties"])


async def test_every_route_is_documented(daemon: RunningDaemon) -> None:
    with trio.fail_after(20):
        async with daemon.http() as client:
            http_doc = (await client.get("/openapi.json")).json()
        async with daemon.admin() as admin:
            admin_doc = (await admin.get("/openapi.json")).json()
    http_app = create_http_app(daemon.ctx)
    admin_app = create_admin_app(daemon.ctx)
    assert len(routes(http_app, admin=False)) > 15
    assert len(routes(admin_app, admin=True)) > 15
    assert mismatch(http_app, http_doc, admin=False) == {"undocumented": [], "not served": []}
    assert mismatch(admin_app, admin_doc, admin=True) == {"undocumented": [], "not served": []}


async def test_a_new_route_or_a_stale_entry_is_caught(daemon: RunningDaemon) -> None:
    app = create_admin_app(daemon.ctx)

    async def extra() -> str:
        return ""

    app.add_url_rule("/extra/<int:item>", "extra", extra, methods=["GET", "PATCH"])
    doc = admin_document()
    doc["paths"]["/gone"] = {"get": {}}
    del doc["paths"]["/log"]
    assert mismatch(app, doc, admin=True) == {
        "undocumented": ["GET /extra/{item}", "GET /log", "PATCH /extra/{item}"],
        "not served": ["GET /gone"],
    }
    http_app = create_http_app(daemon.ctx)
    assert mismatch(http_app, http_document(servers=False), admin=False)["undocumented"]


def test_a_dangling_ref_is_caught() -> None:
    doc = admin_document()
    doc["components"]["schemas"].pop("Ok")
    with pytest.raises(AssertionError, match="unresolved"):
        check_structure(doc)


@pytest.mark.parametrize("path", ["/openapi.json", "/openapi.json/", "/api/openapi.json"])
async def test_served_without_auth(daemon: RunningDaemon, path: str) -> None:
    with trio.fail_after(20):
        async with daemon.admin() as admin:
            answer = await admin.get(path)
        async with daemon.http() as client:
            http_answer = await client.get("/openapi.json")
    for response in (answer, http_answer):
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/json"
    assert answer.json() == admin_document()
    assert http_answer.json() == http_document()
    assert http_answer.headers["X-Content-Type-Options"] == "nosniff"
