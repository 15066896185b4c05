"""/api/docs is Swagger UI served by the API itself: every file the page loads comes from this
API (no CDN), the page runs no inline script and forbids scripts of other origins, and it needs
neither a token nor the database."""

from __future__ import annotations

import re
from urllib.parse import urljoin

import pytest

from tests.support.http_assertions import assert_json_error
from tribe_api.resources.docs import ASSETS

DOCS = "/api/docs"


def loaded_by(page: str) -> list[str]:
    """The URLs the page's elements load (scripts, styles, icons)."""
    return [urljoin(DOCS, url) for url in re.findall(r"""(?:src|href)="([^"]+)\"""", page)]


def test_the_docs_page_loads_only_files_the_api_serves_itself(api):
    page = api.simulate_get(DOCS)

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "://" not in page.text  # nothing from another host: no CDN
    urls = loaded_by(page.text)
    assert {url.rsplit("/", 1)[1] for url in urls} == set(ASSETS)
    for url in urls:
        response = api.simulate_get(url)
        assert response.status_code == 200, url
        assert response.headers["content-type"] == ASSETS[url.rsplit("/", 1)[1]]
        assert response.content, url


def test_the_docs_page_shows_the_api_s_own_document(api):
    page = api.simulate_get(DOCS).text
    start_script = api.simulate_get(f"{DOCS}/swagger-start.js").text

    (spec_url,) = re.findall(r'data-spec-url="([^"]+)"', page)
    assert urljoin(DOCS, spec_url) == "/api/openapi.json"
    assert api.simulate_get(urljoin(DOCS, spec_url)).json["paths"]
    assert "dataset.specUrl" in start_script
    # A link cannot point the page at another document (Swagger UI's ?url= and ?configUrl=)
    assert "queryConfigEnabled: false" in start_script


def test_the_docs_page_runs_no_inline_script_and_allows_scripts_of_this_origin_only(api):
    page = api.simulate_get(DOCS)
    directives = page.headers["content-security-policy"].split(";")
    policy = dict(directive.strip().split(" ", 1) for directive in directives)
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page.text, re.DOTALL)

    assert scripts
    assert all(" src=" in attributes and not body.strip() for attributes, body in scripts)
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"


def test_the_docs_page_and_its_files_are_not_operations_of_the_document(api):
    paths = api.simulate_get("/api/openapi.json").json["paths"]

    assert not [path for path in paths if path.startswith(DOCS)]


def test_swagger_ui_s_files_may_be_cached_by_browsers(api):
    response = api.simulate_get(f"{DOCS}/swagger-ui-bundle.js")

    assert "max-age=" in response.headers["cache-control"]
    assert b"SwaggerUIBundle" in response.content


@pytest.mark.parametrize("name", ["index.html", "swagger-ui-bundle.js.map", "..%2F__init__.py"])
def test_a_file_the_page_does_not_load_is_a_json_404(api, name):
    assert_json_error(api.simulate_get(f"{DOCS}/{name}"), 404)


@pytest.mark.parametrize("path", [DOCS, f"{DOCS}/swagger-ui-bundle.js", f"{DOCS}/swagger-start.js"])
def test_the_docs_need_no_token_and_no_database(api, database_down, path):
    assert api.simulate_get(path).status_code == 200
