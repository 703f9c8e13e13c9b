"""bench/baseline.py's import tree: another commit's folders importable as `chatchannels`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench.baseline import import_tree

PYPROJECT = """
[tool.setuptools]
package-dir = { "chatchannels" = "chatchannels", "chatchannels.processors" = "processors" }
"""


def test_the_tree_imports_the_checkouts_packages_where_package_dir_maps_them(
    tmp_path: Path,
) -> None:
    checkout, tree = tmp_path / "checkout", tmp_path / "tree"
    (checkout / "chatchannels" / "stack").mkdir(parents=True)
    (checkout / "processors" / "pg").mkdir(parents=True)
    (checkout / "pyproject.toml").write_text(PYPROJECT)
    for package in ("chatchannels", "chatchannels/stack", "processors", "processors/pg"):
        (checkout / package / "__init__.py").write_text("")
    (checkout / "processors" / "pg" / "store.py").write_text("WHERE = 'baseline'\n")

    import_tree(checkout, tree)

    # A fresh interpreter with the tree first: the installed chatchannels is not found.
    code = (
        "import chatchannels.stack, chatchannels.processors.pg.store as s;"
        "print(s.WHERE, s.__file__)"
    )
    done = subprocess.run(
        [sys.executable, "-P", "-c", code],
        env={"PYTHONPATH": str(tree)},
        capture_output=True,
        text=True,
        check=True,
    )
    where, path = done.stdout.split()
    assert where == "baseline"
    assert Path(path).resolve() == (checkout / "processors" / "pg" / "store.py").resolve()
