"""Great Expectations Data Docs that render with no network, their static files stored once.

Builds a run's Data Docs from the GX context that validated its data (`build_data_docs`).

GX's pages load Bootstrap, jQuery, bootstrap-table and Font Awesome from CDNs: offline the
validation index lists nothing (a script draws it) and the pass/fail icons are blank. Each page
is rewritten to use a small stylesheet and script of our own instead (a subset of Bootstrap's
layout, the handful of jQuery and bootstrap-table calls the pages make, icons as Unicode
glyphs), kept with GX's logo and favicon in one shared folder per version of these files rather
than ~4 MB copied into every run.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from houseprice import storage

if TYPE_CHECKING:
    from great_expectations.data_context import AbstractDataContext

DOCS_SITE = "run"

# Remote stylesheets and scripts (CDNs); the logo and favicon, which have local copies.
_REMOTE_ASSET = re.compile(
    r"<link\b[^>]*\bhref=\"https?://[^\"]*\"[^>]*>"
    r"|<script\b[^>]*\bsrc=\"https?://[^\"]*\"[^>]*>\s*</script>",
    re.IGNORECASE,
)
_REMOTE_LOGO = re.compile(r"src=\"https?://[^\"]*/logo-long\.png[^\"]*\"")
_REMOTE_CSS_URL = re.compile(r"url\(['\"]?https?://[^)]*\)")
_LOCAL_STATIC = re.compile(r"(?:\./|(?:\.\./)+)?static/images/(favicon\.ico|logo-long\.png)")
GX_IMAGES = ("favicon.ico", "logo-long.png")

# Bootstrap 4's spacing scale: m-0 .. p-5, mt-3, px-0, ...
_SPACING = ["0", ".25rem", ".5rem", "1rem", "1.5rem", "3rem"]
_SIDES = {"": ("",), "t": ("-top",), "b": ("-bottom",), "l": ("-left",), "r": ("-right",)}
_SIDES |= {"x": ("-left", "-right"), "y": ("-top", "-bottom")}


def _spacing_rules() -> str:
    rules = []
    for short, prop in (("m", "margin"), ("p", "padding")):
        for side, suffixes in _SIDES.items():
            for size, value in enumerate(_SPACING):
                body = ";".join(f"{prop}{suffix}:{value}!important" for suffix in suffixes)
                names = [f".{short}{side}-{size}", f".{short}{side}-sm-{size}"]
                names.append(f".{short}{side}-md-{size}")
                rules.append(f"{','.join(names)}{{{body}}}")
    return "\n".join(rules) + "\n.mr-auto{margin-right:auto!important}\n"


def _column_rules() -> str:
    width = lambda n: f"flex:0 0 {100 * n / 12:.4f}%;max-width:{100 * n / 12:.4f}%"  # noqa: E731
    plain = "".join(f".col-{n}{{{width(n)}}}" for n in range(1, 13))
    by_size = {
        size: "".join(f".col-{size}-{n}{{{width(n)}}}" for n in range(1, 13))
        for size in ("sm", "md", "lg")
    }
    return (
        f"{plain}\n@media(min-width:576px){{{by_size['sm']}}}\n"
        f"@media(min-width:768px){{{by_size['md']}.d-md-block{{display:block!important}}"
        f".d-md-inline-flex{{display:inline-flex!important}}}}\n"
        f"@media(min-width:992px){{{by_size['lg']}}}\n"
    )


STYLESHEET = (
    """/* houseprice: the parts of Bootstrap 4 and Font Awesome that GX Data Docs use. */
*,*::before,*::after{box-sizing:border-box}
body{margin:0;font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#212529;
  background:#fff}
a{color:#0b5cad;text-decoration:none}a:hover{text-decoration:underline}
h1,h2,h3,h4,h5,h6,.h6{margin:0 0 .5rem;font-weight:600;line-height:1.2}
h3{font-size:1.5rem}h4{font-size:1.3rem}h5{font-size:1.1rem}h6,.h6{font-size:1rem}
p{margin:0 0 1rem}.lead{font-size:1.1rem;font-weight:300}strong{font-weight:700}
ul{margin-top:0}
.container,.container-fluid{width:100%;padding:0 15px;margin:0 auto}
.row{display:flex;flex-wrap:wrap;margin:0 -15px}
[class*="col-"]{position:relative;width:100%;padding:0 15px}
.d-none{display:none!important}.d-flex{display:flex!important}.d-sm-block{display:block!important}
.float-left{float:left}.h-100{height:100%}.justify-content-center{justify-content:center}
.align-items-center{align-items:center}.rounded{border-radius:.25rem}.bg-light{background:#f8f9fa}
.border-bottom{border-bottom:1px solid #dee2e6}
.sticky-top{position:sticky;top:0;z-index:1020;background:#fff}
.collapse:not(.show){display:none}.fade:not(.show){opacity:0}
.tab-content>.tab-pane{display:none}.tab-content>.active{display:block}
.navbar{display:flex;align-items:center;justify-content:space-between;padding:.5rem 1rem}
.navbar-brand{margin-right:1rem}
.nav{display:flex;flex-wrap:wrap;padding-left:0;margin:0;list-style:none}
.nav-link{display:block;padding:.4rem .8rem}
.nav-pills .nav-link.active{background:#0b5cad;color:#fff;border-radius:.25rem}
.ge-navigation-sidebar-content{flex-direction:column;overflow-y:auto}
.nav-tabs{border-bottom:1px solid #dee2e6}
.nav-tabs .nav-link{border:1px solid transparent;border-radius:.25rem .25rem 0 0;margin-bottom:-1px}
.nav-tabs .nav-link.active{border-color:#dee2e6 #dee2e6 #fff;background:#fff;color:#495057}
table{border-collapse:collapse}
.table{width:100%;margin-bottom:1rem}
.table td,.table th{padding:.5rem;border-top:1px solid #dee2e6;vertical-align:top;text-align:left}
.table thead th{border-bottom:2px solid #dee2e6}
.table-sm td,.table-sm th{padding:.3rem}
.table-bordered,.table-bordered td,.table-bordered th{border:1px solid #dee2e6}
.table-responsive{display:block;width:100%;overflow-x:auto}
.hp-table tbody tr.clickable-row:hover{background:#f1f5fb}
.card{position:relative;display:flex;flex-direction:column;border:1px solid rgba(0,0,0,.125);
  border-radius:.25rem;background:#fff}
.card-header{padding:.6rem 1rem;background:rgba(0,0,0,.03);border-bottom:1px solid rgba(0,0,0,.125)}
.card-body{padding:1rem}
.alert{padding:.6rem 1rem;margin-bottom:1rem;border:1px solid transparent;border-radius:.25rem}
.alert-secondary{color:#383d41;background:#e2e3e5;border-color:#d6d8db}
.badge{display:inline-block;padding:.25em .4em;font-size:80%;font-weight:700;line-height:1;
  border-radius:.25rem;white-space:nowrap;vertical-align:baseline}
.badge-secondary{color:#fff;background:#6c757d}
.btn{display:inline-block;padding:.3rem .7rem;border:1px solid transparent;border-radius:.25rem;
  cursor:pointer;font-size:.9rem;line-height:1.5;user-select:none}
.btn-primary{color:#fff;background:#3d8ad8}.btn-primary.active{background:#0b5cad}
.btn-secondary{color:#fff;background:#6c757d}.btn-sm{padding:.2rem .5rem;font-size:.8rem}
.btn-group{display:inline-flex}.btn-group .btn{border-radius:0}
.btn-group-toggle input{position:absolute;clip:rect(0,0,0,0);pointer-events:none}
.breadcrumb{display:flex;flex-wrap:wrap;list-style:none;padding:.5rem 1rem;margin:0 0 1rem;
  background:#e9ecef;border-radius:.25rem}
.breadcrumb-item+.breadcrumb-item::before{content:"/";padding:0 .5rem;color:#6c757d}
.text-success{color:#1e7e34!important}.text-danger{color:#c82333!important}
.fas,.fa{font-style:normal;font-weight:700;display:inline-block;font-size:1.15em}
.fa-check-circle::before,.fa-check::before{content:"\\2714"}
.fa-times::before,.fa-times-circle::before{content:"\\2718"}
.fa-exclamation-triangle::before{content:"\\26A0"}.fa-info-circle::before{content:"\\2139"}
.fa-question-circle::before{content:"?"}
.cooltip{position:relative}.cooltip .top{display:none}
.cooltip:hover .top{display:block;position:absolute;left:0;bottom:100%;z-index:10;padding:.5rem;
  background:#333;color:#fff;border-radius:.25rem;white-space:pre;font-size:12px}
[id$="-table-toolbar"]{display:none}
"""
    + _column_rules()
    + _spacing_rules()
)

SCRIPT = """/* houseprice: the jQuery and bootstrap-table calls that GX Data Docs make, offline. */
(function () {
  function List(nodes) { this.nodes = nodes; }
  List.prototype.each = function (fn) {
    this.nodes.forEach(function (node, i) { fn.call(node, i, node); });
    return this;
  };
  List.prototype.parent = function () {
    var parents = [];
    this.nodes.forEach(function (n) {
      if (n.parentNode && parents.indexOf(n.parentNode) < 0) { parents.push(n.parentNode); }
    });
    return new List(parents);
  };
  List.prototype.fadeIn = function () {
    return this.each(function (i, n) { n.style.display = ""; });
  };
  List.prototype.fadeOut = function () {
    return this.each(function (i, n) { n.style.display = "none"; });
  };
  List.prototype.on = function (event, handler) {
    var name = event.split(".")[0];
    return this.each(function (i, n) { n.addEventListener(name, handler); });
  };
  List.prototype.ready = function (fn) { ready(fn); return this; };
  List.prototype.bootstrapTable = function (options) {
    if (typeof options === "object") { this.each(function (i, n) { drawTable(n, options); }); }
    return this;
  };
  function ready(fn) {
    if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", fn); }
    else { fn(); }
  }
  function $(what) {
    if (typeof what === "function") { ready(what); return new List([]); }
    if (typeof what === "string") {
      try { return new List(Array.prototype.slice.call(document.querySelectorAll(what))); }
      catch (e) { return new List([]); }
    }
    return new List(what ? [what] : []);
  }
  function drawTable(table, options) {
    var columns = options.columns || [], rows = (options.data || []).slice();
    var sortColumn = columns.filter(function (c) { return c.field === options.sortName; })[0];
    if (sortColumn) {
      var key = sortColumn.sortName || sortColumn.field;
      var sign = options.sortOrder === "desc" ? -1 : 1;
      rows.sort(function (a, b) { return a[key] < b[key] ? -sign : a[key] > b[key] ? sign : 0; });
    }
    var head = "<thead><tr>" + columns.map(function (c) {
      return "<th>" + c.title + "</th>";
    }).join("") + "</tr></thead>";
    var body = rows.map(function (row) {
      var link = row._table_row_link_path;
      return "<tr class='" + (link ? "clickable-row" : "") + "' data-href='" + (link || "") + "'>" +
        columns.map(function (c) { return "<td>" + (row[c.field] || "") + "</td>"; }).join("") +
        "</tr>";
    }).join("");
    table.innerHTML = head + "<tbody>" + body + "</tbody>";
    table.classList.add("table", "table-sm", "hp-table");
    table.addEventListener("click", function (event) {
      var row = event.target.closest("tr.clickable-row");
      if (row && !event.target.closest("a")) { window.location = row.getAttribute("data-href"); }
    });
  }
  document.addEventListener("click", function (event) {
    var toggle = event.target.closest("[data-toggle='tab'],[data-toggle='collapse']");
    if (!toggle) { return; }
    event.preventDefault();
    var target = document.querySelector(toggle.getAttribute("href"));
    if (!target) { return; }
    if (toggle.getAttribute("data-toggle") === "collapse") {
      target.classList.toggle("show");
      return;
    }
    var nav = toggle.closest(".nav");
    nav.querySelectorAll(".nav-link").forEach(function (n) { n.classList.remove("active"); });
    toggle.classList.add("active");
    Array.prototype.forEach.call(target.parentNode.children, function (pane) {
      pane.classList.remove("active", "show");
    });
    target.classList.add("active", "show");
  });
  document.addEventListener("click", function (event) {
    var label = event.target.closest(".btn-group-toggle .btn");
    if (!label) { return; }
    label.parentNode.querySelectorAll(".btn").forEach(function (b) {
      b.classList.remove("active");
    });
    label.classList.add("active");
  });
  window.$ = window.jQuery = $;
})();
"""

ASSETS = {"data-docs.css": STYLESHEET, "data-docs.js": SCRIPT}


def ensure_shared_static(shared_root: Path, gx_static: Path) -> Path:
    """The shared folder of this version of the assets, written once (atomically) if missing."""
    digest = hashlib.sha256()
    for name, text in sorted(ASSETS.items()):
        digest.update(name.encode() + b"\0" + text.encode() + b"\0")
    for name in GX_IMAGES:
        digest.update((gx_static / "images" / name).read_bytes())
    folder = Path(shared_root) / digest.hexdigest()[:12]
    if folder.is_dir():
        return folder

    def write(staging: Path) -> None:
        staging.mkdir(parents=True)
        for name, text in ASSETS.items():
            (staging / name).write_text(text, encoding="utf-8")
        for name in GX_IMAGES:
            shutil.copyfile(gx_static / "images" / name, staging / name)

    try:
        storage.write_with_atomic(folder, write)
    except OSError:
        if not folder.is_dir():  # another run wrote the same folder a moment ago: fine
            raise
    return folder


def offline_page(page: str, static_href: str) -> str:
    """One Data Docs page with its CDN assets replaced by the shared folder at static_href."""
    local = (
        f'<link rel="stylesheet" href="{static_href}/data-docs.css">'
        f'<script src="{static_href}/data-docs.js"></script>'
    )
    page = _REMOTE_ASSET.sub("", page)
    page = _REMOTE_LOGO.sub(f'src="{static_href}/logo-long.png"', page)
    page = _REMOTE_CSS_URL.sub("none", page)
    page = _LOCAL_STATIC.sub(lambda m: f"{static_href}/{m.group(1)}", page)
    return page.replace("</head>", f"{local}</head>", 1)


def make_offline(site: Path, shared_root: Path) -> Path:
    """Rewrite every page of a built Data Docs site to the shared assets; drop its own copies."""
    site = Path(site)
    shared = ensure_shared_static(shared_root, site / "static")
    for page in site.rglob("*.html"):
        href = Path(os.path.relpath(shared, page.parent)).as_posix()
        page.write_text(offline_page(page.read_text(encoding="utf-8"), href), encoding="utf-8")
    shutil.rmtree(site / "static")
    return shared


def build_data_docs(context: AbstractDataContext, docs_dir: Path, static: Path) -> Path:
    """Render the context's suites and results into docs_dir, offline; its index.html.

    Built beside docs_dir, then renamed into place; styles and scripts go to static.
    """

    def build(folder: Path) -> None:
        site = {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                # GX refuses a relative base_directory (the default artifacts folder is one).
                "base_directory": str(Path(folder).resolve()),
            },
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        }
        context.add_data_docs_site(DOCS_SITE, site)
        context.build_data_docs(site_names=[DOCS_SITE])
        make_offline(folder, static)  # GX's pages would fetch their styles from CDNs

    storage.write_with_atomic(Path(docs_dir), build)
    return Path(docs_dir) / "index.html"


def leave_out_of_docs(context: AbstractDataContext, suite_names: Iterable[str]) -> None:
    """Drop these suites and their validation results from the context, so no page shows them."""
    names = set(suite_names)
    store = context.validation_results_store
    for key in store.list_keys():
        if key.expectation_suite_identifier.name in names:
            store.remove_key(key)
    for name in names:
        context.suites.delete(name)
