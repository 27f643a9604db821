"""Every ```python block of README.md and docs/*.md runs.

The blocks of one file run in order in one namespace (a later block may use what an earlier
one defined), in a temporary working directory. A block whose first line carries the marker
``# doctest: +SKIP`` is not run: keep that for code that needs what CI lacks (a GPU).
Keep the snippets fast (small ``max_epochs`` where a page is not about results): all pages
together take well under a minute on 2 cores.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
SKIP_MARKER = "# doctest: +SKIP"
FENCE = re.compile(
    r"^(?P<indent>[ \t]*)```(?P<lang>[^\s`]*)[^\n]*\n(?P<body>.*?)^(?P=indent)```[ \t]*$",
    re.MULTILINE | re.DOTALL,
)


def python_blocks(text: str) -> list[tuple[int, str]]:
    """``(first line number, code)`` of each ```python fenced block, in order."""
    blocks = []
    for match in FENCE.finditer(text):
        if match.group("lang").lower() not in ("python", "py", "python3"):
            continue
        line = text.count("\n", 0, match.start("body")) + 1
        indent = match.group("indent")
        body = "".join(raw[len(indent):] if raw.startswith(indent) else raw
                       for raw in match.group("body").splitlines(keepends=True))
        blocks.append((line, body))
    return blocks


def test_blocks_are_found():
    text = "x\n```python\na = 1\n```\n```bash\nls\n```\n  ```python\n  b = a\n  ```\n"
    assert python_blocks(text) == [(3, "a = 1\n"), (9, "b = a\n")]
    assert sum(len(python_blocks(p.read_text(encoding="utf-8"))) for p in PAGES) > 10


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_page_snippets_run(page, tmp_path, monkeypatch):
    pytest.importorskip("pandas")
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    monkeypatch.chdir(tmp_path)  # snippets may write files (joblib dumps, recordings)
    namespace: dict = {"__name__": "__docs__"}
    blocks = python_blocks(page.read_text(encoding="utf-8"))
    try:
        for line, code in blocks:
            if not code.strip() or code.lstrip().splitlines()[0].rstrip().endswith(SKIP_MARKER):
                continue
            where = f"{page.relative_to(ROOT)}, block at line {line}"
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # convergence and inference notices
                    exec(compile(code, where, "exec"), namespace)  # noqa: S102
            except Exception as exc:  # noqa: BLE001 - re-raised with the block's location
                raise AssertionError(f"{where} failed: {exc!r}\n\n{code}") from exc
    finally:
        plt.close("all")


PUBLIC_MODULES = ["sklearn_mtml", "sklearn_mtml.features", "sklearn_mtml.nn",
                  "sklearn_mtml.datasets", "sklearn_mtml.weighting", "sklearn_mtml.metrics",
                  "sklearn_mtml.callbacks", "sklearn_mtml.model_selection",
                  "sklearn_mtml.parallel", "sklearn_mtml.accelerate"]


def test_api_reference_lists_every_public_name():
    """docs/api.rst documents every name of the public modules' ``__all__`` (once, somewhere)."""
    import importlib

    documented = []
    module = None
    in_autosummary = False
    for raw in (ROOT / "docs" / "api.rst").read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line.startswith(".. currentmodule::"):
            module = line.split("::", 1)[1].strip()
        elif line.startswith(".. autosummary::"):
            in_autosummary = True
        elif in_autosummary and raw and not raw.startswith(" "):
            in_autosummary = False
        elif in_autosummary and line and not line.startswith(":"):
            mod = importlib.import_module(module)
            documented.append(getattr(mod, line))  # a name that does not exist fails here
    missing = []
    for name in PUBLIC_MODULES:
        mod = importlib.import_module(name)
        for attr in mod.__all__:
            obj = getattr(mod, attr)
            if attr != "__version__" and not any(obj is d for d in documented):
                missing.append(f"{name}.{attr}")
    assert not missing, f"add to docs/api.rst: {missing}"
