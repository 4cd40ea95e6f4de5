"""Great Expectations Data Docs, drawn by GX's own renderer, readable with no network.

Builds a run's Data Docs from the GX context that validated its data (`build_data_docs`).

GX's page templates load Bootstrap, jQuery, bootstrap-table (with its filter control and date
picker) and Font Awesome from CDNs, and GX 1.24 ships none of those files: its static folder
holds only its own styles, fonts and images. Its site config has no switch for that (no `cdn`
option; `static_images_dir` is a variable inside its templates, not a setting), so the site
names its own views instead (`view` in `site_section_builders` and `site_index_builder`, GX's
extension point for custom pages): GX's views with our copies of the five templates that name
a CDN, pointing at one shared folder. That folder holds the same libraries at the versions GX's
templates name (from npm, their licences in LICENSES.md), with GX's favicon and logo; it is
written once per version of those files, rather than GX's ~4 MB copied into every run.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from houseprice import storage

if TYPE_CHECKING:
    from great_expectations.data_context import AbstractDataContext

DOCS_SITE = "run"
VIEWS = "houseprice.tasks.data_docs_views"
ASSETS = Path(__file__).resolve().parent / "data_docs_assets" / "static"
GX_IMAGES = ("favicon.ico", "logo-long.png")


def _asset_files(gx_static: Path) -> dict[str, Path]:
    """Each file of the shared folder, by its path there: the libraries, then GX's images."""
    files = {p.relative_to(ASSETS).as_posix(): p for p in sorted(ASSETS.rglob("*")) if p.is_file()}
    return files | {f"images/{name}": gx_static / "images" / name for name in GX_IMAGES}


def ensure_shared_static(shared_root: Path, gx_static: Path) -> Path:
    """The shared folder of this version of the assets, written once (atomically) if missing."""
    files = _asset_files(gx_static)
    digest = hashlib.sha256()
    for name, path in files.items():
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    folder = Path(shared_root) / digest.hexdigest()[:12]
    if folder.is_dir():
        return folder

    def write(staging: Path) -> None:
        staging.mkdir(parents=True)
        for name, path in files.items():
            (staging / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, staging / name)

    try:
        storage.write_with_atomic(folder, write)
    except OSError:
        if not folder.is_dir():  # another run wrote the same folder a moment ago: fine
            raise
    return folder


def site_config(folder: Path, static_href: str) -> dict:
    """The GX site: written to folder, its pages drawn by our views (static_href from its root)."""
    view = {"module_name": VIEWS, "class_name": "OfflinePageView", "static_href": static_href}
    return {
        "class_name": "SiteBuilder",
        "show_how_to_buttons": False,
        "store_backend": {
            "class_name": "TupleFilesystemStoreBackend",
            # GX refuses a relative base_directory (the default artifacts folder is one).
            "base_directory": str(Path(folder).resolve()),
        },
        "site_section_builders": {"expectations": {"view": view}, "validations": {"view": view}},
        "site_index_builder": {
            "class_name": "DefaultSiteIndexBuilder",
            "view": {**view, "class_name": "OfflineIndexPageView"},
        },
    }


def build_data_docs(context: AbstractDataContext, docs_dir: Path, static: Path) -> Path:
    """Render the context's suites and results into docs_dir, offline; its index.html.

    Built beside docs_dir, then renamed into place; styles and scripts go to static.
    """
    from great_expectations.render import view

    shared = ensure_shared_static(static, Path(view.__file__).parent / "static")
    href = Path(os.path.relpath(shared.resolve(), Path(docs_dir).resolve())).as_posix()

    def build(folder: Path) -> None:
        context.add_data_docs_site(DOCS_SITE, site_config(folder, href))
        context.build_data_docs(site_names=[DOCS_SITE])
        shutil.rmtree(folder / "static")  # GX's copy of its static files: the pages use shared

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
