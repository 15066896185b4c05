"""The docs page, ``/api/docs``: Swagger UI showing ``/api/openapi.json``, served by the API.

Swagger UI's files come from the ``swagger-ui-bundle-v2`` package (its version pinned in
``uv.lock``), not from a CDN: the page works offline and runs no third-party code fetched at
run time. The page has no inline script (its start-up is :data:`START_SCRIPT`, served beside
Swagger UI's files), so its Content-Security-Policy allows scripts of this origin only.

No token and no database connection: the page and its files answer while the database is down.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import falcon
from swagger_ui_bundle import swagger_ui_path

DOCS_PATH = "/api/docs"
SPEC_PATH = "/api/openapi.json"

#: Swagger UI's start-up: the document's URL comes from the page (``data-spec-url``). No
#: "explore" bar and no ``?url=`` / ``?configUrl=``: the page shows this API's document only.
START_SCRIPT = b"""\
window.addEventListener("load", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.specUrl,
    domNode: root,
    deepLinking: true,
    queryConfigEnabled: false,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout"
  });
});
"""

PAGE = f"""\
<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Tribe Jobs API</title>
  <link rel="stylesheet" href="{DOCS_PATH}/swagger-ui.css">
  <link rel="icon" type="image/png" href="{DOCS_PATH}/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui" data-spec-url="{SPEC_PATH}"></div>
  <script src="{DOCS_PATH}/swagger-ui-bundle.js"></script>
  <script src="{DOCS_PATH}/swagger-start.js"></script>
</body>
</html>
""".encode()

#: This origin's files only; styles may be inline (Swagger UI sets some on its elements).
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)

#: The files the page loads, by name: Swagger UI's own, and our start-up script.
ASSETS = {
    "swagger-ui-bundle.js": falcon.MEDIA_JS,
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": falcon.MEDIA_PNG,
    "swagger-start.js": falcon.MEDIA_JS,
}
#: Browsers may keep the files a day (their names carry no version).
ASSET_CACHE = "public, max-age=86400"


class DocsPageResource:
    auth_required = False
    uses_database = False

    def on_get(self, req, resp):
        resp.content_type = falcon.MEDIA_HTML
        resp.set_header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        resp.set_header("X-Content-Type-Options", "nosniff")
        resp.data = PAGE


class DocsAssetResource:
    """``/api/docs/{name}``: one of :data:`ASSETS`, else 404."""

    auth_required = False
    uses_database = False

    def __init__(self, directory: Path = Path(swagger_ui_path)):
        self._directory = directory

    def on_get(self, req, resp, name: str):
        if name not in ASSETS:
            raise falcon.HTTPNotFound(title="Not found", description=f"No docs file {name!r}")
        resp.content_type = ASSETS[name]
        resp.set_header("Cache-Control", ASSET_CACHE)
        resp.set_header("X-Content-Type-Options", "nosniff")
        resp.data = START_SCRIPT if name == "swagger-start.js" else _read(self._directory / name)


@cache  # a handful of files, read once per process, the first time the page is opened
def _read(path: Path) -> bytes:
    return path.read_bytes()
