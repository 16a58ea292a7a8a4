"""The web pages: Vietnamese HTML shells whose scripts call the same HTTP API as everyone else.

The pages hold no business logic of their own: each template lays out its page, and its ES module under
``web/static/js/`` reads and writes through ``/api/v1`` with the session cookie of ``/api/v1/auth/session``.
Who may see what is therefore decided once, by the API. Third-party libraries (bpmn-js, Chart.js) come from
``web/node_modules`` (installed by ``make setup`` from the npm registry) and are served from ``/vendor/``: no
page loads anything from another origin.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, Response, abort, render_template, send_from_directory

WEB_DIR = Path(__file__).resolve().parent
NODE_MODULES = WEB_DIR / "node_modules"
# Only these files of the npm packages are served; everything else under node_modules stays private.
VENDOR_FILES = {
    "bpmn-js/bpmn-modeler.js": "bpmn-js/dist/bpmn-modeler.production.min.js",
    "bpmn-js/bpmn-navigated-viewer.js": "bpmn-js/dist/bpmn-navigated-viewer.production.min.js",
    "bpmn-js/diagram-js.css": "bpmn-js/dist/assets/diagram-js.css",
    "bpmn-js/bpmn-js.css": "bpmn-js/dist/assets/bpmn-js.css",
    "bpmn-js/bpmn-font/css/bpmn.css": "bpmn-js/dist/assets/bpmn-font/css/bpmn.css",
    "bpmn-js/bpmn-font/font/bpmn.woff2": "bpmn-js/dist/assets/bpmn-font/font/bpmn.woff2",
    "bpmn-js/bpmn-font/font/bpmn.woff": "bpmn-js/dist/assets/bpmn-font/font/bpmn.woff",
    "bpmn-js/bpmn-font/font/bpmn.ttf": "bpmn-js/dist/assets/bpmn-font/font/bpmn.ttf",
    "chart.js/chart.js": "chart.js/dist/chart.umd.min.js",
}

# Pages' scripts and styles may be reused from the browser's cache for five minutes, then revalidated (ETag):
# one person's navigation does not fetch every module again, and a new release reaches everyone quickly.
STATIC_MAX_AGE = 300


class _Pages(Blueprint):
    def get_send_file_max_age(self, filename: str | None) -> int | None:
        return STATIC_MAX_AGE


bp = _Pages(
    "web",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)

# path -> (template, page title). Every page is a shell: its script fills it from the API.
PAGES: dict[str, tuple[str, str]] = {
    "/": ("web/home.html", "Cổng dịch vụ công trực tuyến"),
    "/dang-nhap": ("web/login.html", "Đăng nhập"),
    "/thu-tuc": ("web/catalogue.html", "Thủ tục hành chính"),
    "/tra-cuu": ("web/track.html", "Tra cứu hồ sơ"),
    "/ho-so": ("web/my_dossiers.html", "Hồ sơ của tôi"),
    "/can-bo": ("web/inbox.html", "Hộp công việc"),
    "/mo-hinh": ("web/definitions.html", "Quy trình nghiệp vụ"),
    "/mo-hinh/soan-thao": ("web/modeler.html", "Soạn thảo quy trình"),
    "/giam-sat/chi-so": ("web/dashboard.html", "Chỉ số phục vụ người dân, doanh nghiệp"),
}
# Pages with one path parameter: path -> (template, title, parameter name).
DETAIL_PAGES: dict[str, tuple[str, str, str]] = {
    "/thu-tuc/<code>": ("web/procedure.html", "Thông tin thủ tục", "code"),
    "/thu-tuc/<code>/nop-ho-so": ("web/submit.html", "Nộp hồ sơ trực tuyến", "code"),
    "/ho-so/<code>": ("web/dossier.html", "Chi tiết hồ sơ", "code"),
    "/can-bo/nhiem-vu/<task_id>": ("web/task.html", "Xử lý hồ sơ", "task_id"),
    "/giam-sat/qua-trinh/<instance_id>": ("web/instance.html", "Giám sát quy trình", "instance_id"),
}


def _page(template: str, title: str, **params: Any) -> str:
    return render_template(template, title=title, params=params)


def _register_pages() -> None:
    for path, (template, title) in PAGES.items():
        endpoint = template.removeprefix("web/").removesuffix(".html")
        bp.add_url_rule(path, endpoint, lambda t=template, n=title: _page(t, n))
    for path, (template, title, name) in DETAIL_PAGES.items():
        endpoint = template.removeprefix("web/").removesuffix(".html")

        def view(t: str = template, n: str = title, key: str = name, **kwargs: str) -> str:
            return _page(t, n, **{key: kwargs[key]})

        bp.add_url_rule(path, endpoint, view)


_register_pages()


@bp.route("/vendor/<path:name>")
def vendor(name: str) -> Response:
    """One allow-listed file of an npm package (404 for anything else, or before ``make setup`` ran)."""
    target = VENDOR_FILES.get(name)
    if target is None or not (NODE_MODULES / target).is_file():
        abort(404)
    return send_from_directory(NODE_MODULES, target, max_age=86400)


@bp.after_request
def _page_headers(response: Response) -> Response:
    """Pages may load scripts, styles, images and fonts only from this origin, and may not be framed."""
    if response.mimetype == "text/html" and "Content-Security-Policy" not in response.headers:
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
            "font-src 'self' data:; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
        )
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


def install(app: Flask) -> None:
    """Serve the pages and their static files from ``app`` (call once in ``create_app``)."""
    app.register_blueprint(bp)
