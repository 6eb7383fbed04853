"""OpenAPI 3.1 documents of the two HTTP listeners, served at ``GET /openapi.json``.

The documents are built in code: request bodies come from the msgspec Structs the
handlers decode (:func:`msgspec.json.schema_components`), answers and errors are
written out in :mod:`.openapi_http` (HTTP API and ``/rooms``) and
:mod:`.openapi_admin` (admin API). ``tests/api/test_openapi.py`` compares each
document with the routes the apps really have, so none goes undocumented.

The admin document lists each path once, without the trailing slash and without the
``/api/`` prefix; both forms are served too (the document says so).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import msgspec
from quart import Response

__all__ = [
    "BEARER",
    "JSON",
    "Schema",
    "Security",
    "admin_document",
    "constrain",
    "document",
    "error_response",
    "admin_view",
    "http_document",
    "http_view",
    "json_body",
    "has_required_fields",
    "json_schema",
    "operation",
    "path_parameter",
    "query_parameter",
    "ref",
    "response",
    "struct_components",
]

JSON = "application/json"
OPENAPI_VERSION = "3.1.0"
_REF = "#/components/schemas/{name}"

Schema = dict[str, Any]
#: A security requirement list (``[{"bearer": []}]``; ``[]`` is public).
Security = list[dict[str, list[str]]]
#: The security of a call that takes an access token (the Bearer header).
BEARER: Security = [{"bearer": []}]


def ref(name: str) -> Schema:
    return {"$ref": _REF.format(name=name)}


def struct_components(structs: Iterable[type[Any]]) -> tuple[list[Schema], Schema]:
    """``($ref per Struct, components)``: JSON Schema 2020-12, which OpenAPI 3.1 uses."""
    refs, components = msgspec.json.schema_components(list(structs), ref_template=_REF)
    return list(refs), dict(components)


def constrain(schemas: Mapping[str, Schema], field: str, rules: Schema) -> None:
    """Add ``rules`` (e.g. a ``pattern``) to every string schema of ``field`` in the
    generated components: what the handler checks beyond the Struct's types."""
    for component in schemas.values():
        prop = component.get("properties", {}).get(field)
        if prop is None:
            continue
        for schema in prop.get("anyOf", [prop]):
            if schema.get("type") == "string":
                schema.update(rules)


def has_required_fields(struct: type[msgspec.Struct]) -> bool:
    """Whether a body of this Struct must be sent (an empty body decodes as ``{}``)."""
    return any(field.required for field in msgspec.structs.fields(struct))


def json_schema(schema: Schema, description: str) -> Schema:
    """A response with a JSON body."""
    return {"description": description, "content": {JSON: {"schema": schema}}}


def response(description: str, schema: Schema | None = None) -> Schema:
    if schema is None:
        return {"description": description}
    return json_schema(schema, description)


def error_response(description: str, schema: str = "Error") -> Schema:
    """A refusal: ``description`` and the listener's error object ``schema``."""
    return response(description, ref(schema))


def json_body(schema: Schema, *, required: bool = True, description: str = "") -> Schema:
    body: Schema = {"required": required, "content": {JSON: {"schema": schema}}}
    if description:
        body["description"] = description
    return body


def operation(
    operation_id: str,
    summary: str,
    responses: Mapping[str, Schema],
    *,
    tags: list[str],
    body: Schema | None = None,
    parameters: list[Schema] | None = None,
    security: list[dict[str, list[str]]] | None = None,
    description: str = "",
) -> Schema:
    op: Schema = {"operationId": operation_id, "summary": summary, "tags": tags}
    if description:
        op["description"] = description
    if parameters:
        op["parameters"] = parameters
    if body is not None:
        op["requestBody"] = body
    if security is not None:
        op["security"] = security
    op["responses"] = dict(responses)
    return op


def path_parameter(name: str, schema: Schema, description: str) -> Schema:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": schema,
        "description": description,
    }


def query_parameter(name: str, schema: Schema, description: str) -> Schema:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


def document(
    title: str,
    description: str,
    paths: Mapping[str, Schema],
    schemas: Mapping[str, Schema],
    security_schemes: Mapping[str, Schema],
    security: list[dict[str, list[str]]] | None = None,
) -> Schema:
    from .. import __version__

    doc: Schema = {
        "openapi": OPENAPI_VERSION,
        "info": {"title": title, "version": __version__, "description": description},
        "paths": dict(paths),
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "securitySchemes": dict(security_schemes),
        },
    }
    if security is not None:
        doc["security"] = security
    return doc


def http_document(*, servers: bool = True) -> Schema:
    """The HTTP API's document; ``servers`` False leaves out ``/api/server_*`` (an
    app built without a server manager has no such routes)."""
    from .http.openapi import build

    return build(servers=servers)


def admin_document() -> Schema:
    from .admin.openapi import build

    return build()


@functools.cache
def _encoded(listener: str) -> bytes:
    """A listener's document, built at its first request (20-30 ms) and kept for the
    process: it is the same for every app, and most daemons are never asked for it."""
    return msgspec.json.encode(http_document() if listener == "http" else admin_document())


def _view(listener: str) -> Callable[[], Awaitable[Response]]:
    async def openapi_json() -> Response:
        return Response(_encoded(listener), status=200, content_type=JSON)

    return openapi_json


def http_view() -> Callable[[], Awaitable[Response]]:
    """The view of ``GET /openapi.json`` on the HTTP API (public)."""
    return _view("http")


def admin_view() -> Callable[[], Awaitable[Response]]:
    """The view of ``GET /openapi.json`` on the admin API (public, no auth)."""
    return _view("admin")
