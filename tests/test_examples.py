"""Static checks of the gallery scripts (the docs build runs them; this only reads them)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SCRIPTS = sorted(EXAMPLES.glob("plot_*.py"))


def test_gallery_has_a_readme_and_scripts():
    readme = (EXAMPLES / "README.txt").read_text(encoding="utf-8").splitlines()
    assert readme[0] == "Gallery of examples"
    assert readme[1] == "=" * len(readme[0])
    assert len(SCRIPTS) >= 8


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_sphinx_gallery_format(script):
    source = script.read_text(encoding="utf-8")
    docstring = ast.get_docstring(ast.parse(source), clean=False)
    assert docstring is not None, "a gallery script opens with its docstring"
    lines = docstring.strip("\n").splitlines()
    over, title, under = lines[:3]
    assert set(over) == {"="} and over == under and len(under) >= len(title.strip()), (
        "the docstring opens with an RST title between two '=' lines")
    assert source.count("\n# %%") >= 2, "the script is split into commented cells"
    # RST section underlines in the cells must be at least as long as their titles
    for heading, underline in re.findall(r"^# (\S.*)\n# ([-~^]{3,})$", source, re.M):
        assert len(underline) >= len(heading), heading
    # real data shipped with the package or scikit-learn; nothing downloaded
    for forbidden in ("fetch_", "../shared", "SKLEARN_MTML_DATA", "http://", "https://"):
        assert forbidden not in source, forbidden
    assert "random_state" in source
