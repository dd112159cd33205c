"""/docs offline: Swagger UI 5 (it reads the OpenAPI 3.1 FastAPI writes) from the files the fastapi-offline
package ships, instead of the CDN links of FastAPI's default page."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.staticfiles import StaticFiles

ASSETS = "/docs-assets"


def mount_docs(app: FastAPI) -> None:
    """GET /docs: the interactive API page, its script, style and icon served by this app (create the app with
    docs_url=None so FastAPI's CDN page does not shadow this one)."""
    from importlib.resources import files

    app.mount(ASSETS, StaticFiles(directory=str(files("fastapi_offline") / "static")), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs():
        return get_swagger_ui_html(openapi_url=app.openapi_url, title=f"{app.title} API",
                                   swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{ASSETS}/swagger-ui.css",
                                   swagger_favicon_url=f"{ASSETS}/favicon.png")
