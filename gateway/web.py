"""The web page and the API's interactive docs, as static files built from web/ (`make web`), and the
headers that keep every answer to its own origin: a Content-Security-Policy with no inline script, and no
sniffing or framing (docs/adr/0023). The page talks to the public API only, as any other client."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse, JSONResponse
from starlette.datastructures import MutableHeaders
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.errors import ApiError

DEFAULT_WEB_DIR = Path(__file__).resolve().parent.parent / "web" / "dist"
# The scope the page asks the issuer for: an ID token and an access token, nothing more.
WEB_SCOPE = "openid"


def content_security_policy(issuer: str) -> str:
    """Scripts, styles and everything else from this origin only; the page may call the issuer (its discovery
    document and token endpoint) and nothing else elsewhere."""
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            f"connect-src 'self' {origin_of(issuer)}",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class SecurityHeadersMiddleware:
    """The same protective headers on every answer, the API's JSON included (a policy for a document that
    has none to run costs nothing, and no route can forget it)."""

    def __init__(self, app: ASGIApp, *, issuer: str) -> None:
        self.app = app
        self.headers = {
            "content-security-policy": content_security_policy(issuer),
            "x-content-type-options": "nosniff",
            "referrer-policy": "no-referrer",
            "cross-origin-opener-policy": "same-origin",
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.headers.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install_web(app: FastAPI, *, issuer: str, client_id: str, web_dir: Path = DEFAULT_WEB_DIR) -> None:
    """/ (the page), /docs (Swagger UI), /static/... (their files) and /config.json (whom to sign in with)."""
    router = APIRouter(include_in_schema=False)

    def page(name: str) -> FileResponse:
        file = web_dir / name
        if not file.is_file():
            raise ApiError(503, "WEB_PAGE_NOT_BUILT", "the web page is not built: run `make web`")
        # Re-read on each visit: a new build's file names are the same.
        return FileResponse(file, media_type="text/html; charset=utf-8", headers={"cache-control": "no-cache"})

    @router.get("/")
    async def index() -> FileResponse:
        return page("index.html")

    @router.get("/docs")
    async def docs() -> FileResponse:
        return page("docs.html")

    @router.get("/config.json")
    async def config() -> JSONResponse:
        """What the page needs to sign in: the issuer whose tokens the API accepts, and the page's client id."""
        return JSONResponse(
            {"issuer": issuer, "client_id": client_id, "scope": WEB_SCOPE}, headers={"cache-control": "no-cache"}
        )

    app.include_router(router)
    app.mount("/static", _BuiltFiles(directory=web_dir / "static", check_dir=False), name="static")


class _BuiltFiles(StaticFiles):
    """The page's files; before the page is built, a 404 for each rather than a failing gateway."""

    async def check_config(self) -> None:
        if self.directory is not None and Path(self.directory).is_dir():
            await super().check_config()
