"""The distribution's shape: what a desktop install pulls in, and that every package ships."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata

from packaging.requirements import Requirement

from tests.support.paths import REPO

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
SERVER_ONLY = {
    "psycopg",
    "psycopg-binary",
    "whoosh-reloaded",
    "feedgen",
    "jinja2",
    "werkzeug",
    "waitress",
    "argon2-cffi",
    "itsdangerous",
}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _closure(requirements: list[str]) -> set[str]:
    """Every distribution these requirements pull in, read from the installed metadata."""
    seen: set[str] = set()
    todo = [Requirement(r) for r in requirements]
    while todo:
        req = todo.pop()
        name = _norm(req.name)
        if name in seen:
            continue
        seen.add(name)
        for sub in metadata.requires(req.name) or []:
            sub_req = Requirement(sub)
            extras = req.extras or {""}
            if sub_req.marker is None or any(sub_req.marker.evaluate({"extra": e}) for e in extras):
                todo.append(sub_req)
    return seen


def test_agent_install_pulls_no_server_library():
    project = PYPROJECT["project"]
    pulled = _closure(project["dependencies"] + project["optional-dependencies"]["agent"])
    assert pulled.isdisjoint(SERVER_ONLY), pulled & SERVER_ONLY
    assert "kafka-python" in pulled and "crc32c" in pulled


def test_every_dependency_is_pinned():
    project = PYPROJECT["project"]
    groups = [project["dependencies"], *project["optional-dependencies"].values()]
    for requirement in (r for group in groups for r in group):
        assert "==" in requirement, f"{requirement} is not pinned"


def test_every_package_folder_is_listed():
    setuptools = PYPROJECT["tool"]["setuptools"]
    mapping = setuptools["package-dir"]
    on_disk = set()
    for package, folder in mapping.items():
        for init in (REPO / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(REPO / folder)
            on_disk.add(".".join([package, *rel.parts]))
    # Folders of data files (migrations, templates, scenarios) are packages without code:
    # listed, so that setuptools installs them without warning that it would not.
    data_only = set(setuptools["package-data"]) - on_disk
    assert on_disk | data_only == set(setuptools["packages"])
