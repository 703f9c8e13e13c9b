"""Another commit's processor, runnable beside this tree's in the same benchmark run.

`checkout(ref)` makes a detached git worktree of `ref` and an import tree for it: a folder
whose `chatchannels/` package is the checkout's, put together as pyproject.toml's
`package-dir` maps the top-level folders to subpackages (the layout is the commit's own).
With the tree first on PYTHONPATH, this tree's interpreter and libraries run that commit's
code (bench/processor_instance.py); no second environment is installed.
"""

from __future__ import annotations

import subprocess
import tempfile
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.children import REPO


@contextmanager
def checkout(ref: str) -> Iterator[Path]:
    """The import tree of `ref`; the worktree is removed however the benchmark ends."""
    with tempfile.TemporaryDirectory(prefix="bench-baseline-") as tmp:
        worktree, tree = Path(tmp) / "checkout", Path(tmp) / "tree"
        _git("worktree", "add", "--detach", str(worktree), ref)
        try:
            import_tree(worktree, tree)
            yield tree
        finally:
            _git("worktree", "remove", "--force", str(worktree))


def import_tree(checkout: Path, tree: Path) -> None:
    """In `tree`, each package of the checkout's `package-dir` where an import looks for it:
    a top-level package is a folder of links to its folder's entries (its subpackages may
    come from other folders), a subpackage a link to its folder."""
    setuptools = tomllib.loads((checkout / "pyproject.toml").read_text())["tool"]["setuptools"]
    # Parents first: a subpackage's link goes into its parent's folder.
    for package, folder in sorted(setuptools["package-dir"].items(), key=lambda m: m[0]):
        place = tree.joinpath(*package.split("."))
        if "." in package:
            place.symlink_to(checkout / folder, target_is_directory=True)
        else:
            place.mkdir(parents=True)
            for entry in (checkout / folder).iterdir():
                (place / entry.name).symlink_to(entry)


def _git(*args: str) -> None:
    done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {done.stderr.strip()}")
