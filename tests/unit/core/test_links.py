"""Nothing in the repository points outside it: every relative link in the documents resolves
to a file of the repository, and no file names a path beside the checkout."""

from __future__ import annotations

import re
import subprocess

from tests.support.paths import REPO

# Spelled in pieces so that this file does not name them itself.
BESIDE = ("..", "/shared"), ("/work", "/notes")
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def _tracked(*patterns: str) -> list:
    out = subprocess.run(
        ["git", "ls-files", "--", *patterns], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    return [REPO / name for name in out if not name.startswith("tests/data/")]


def test_relative_links_in_documents_resolve_inside_the_repository():
    broken = []
    for doc in _tracked("*.md"):
        for target in LINK.findall(doc.read_text()):
            if "://" in target or target.startswith("mailto:"):
                continue
            resolved = (doc.parent / target).resolve()
            if not resolved.is_relative_to(REPO) or not resolved.exists():
                broken.append(f"{doc.relative_to(REPO)} -> {target}")
    assert broken == []


def test_no_file_names_a_path_beside_the_checkout():
    outside = [
        f"{path.relative_to(REPO)}: {line.strip()}"
        for path in _tracked("*.py", "*.md", "*.toml", "*.yml", "*.yaml", "Makefile", "*.sh")
        if path.exists()
        for line in path.read_text(errors="replace").splitlines()
        if any(a + b in line for a, b in BESIDE)
    ]
    assert outside == []
