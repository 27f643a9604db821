"""Sphinx configuration of the sklearn-mtml documentation.

Build (from the repository root)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

The gallery (``examples/plot_*.py``) is executed by default; ``SKLEARN_MTML_DOCS_FAST=1``
builds the gallery pages without running the examples (no figures, no outputs).
"""

from __future__ import annotations

import os
import re
import sys
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# Document the checkout, also when the package is not installed in editable mode.
sys.path.insert(0, str(ROOT))

import sklearn_mtml  # noqa: E402

# -- Project -------------------------------------------------------------------------------

project = "sklearn-mtml"
author = "sklearn-mtml developers"
copyright = "sklearn-mtml developers"  # noqa: A001
release = sklearn_mtml.__version__
version = ".".join(release.split(".")[:2])

# -- General -------------------------------------------------------------------------------

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints"]
# No intersphinx: the build must work offline. References to other projects' objects
# (numpy, scikit-learn, torch, skorch) are rendered as code without a link.
default_role = "literal"  # `x` in reST docstrings is inline code, as in Markdown

# -- autodoc / autosummary / numpydoc ------------------------------------------------------

autosummary_generate = True
autosummary_imported_members = False
autodoc_typehints = "none"  # numpydoc's Parameters sections carry the types
autodoc_member_order = "bysource"
toc_object_entries_show_parents = "hide"  # "fit()" rather than "MultiTaskNet.fit()" in page tocs

numpydoc_show_class_members = False  # the class template lists the members itself
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False

# -- MyST (the Markdown user guide) --------------------------------------------------------

myst_enable_extensions = ["colon_fence", "dollarmath", "deflist"]
myst_heading_anchors = 4  # [text](page.md#a-heading) links, to level-4 headings

# -- sphinx-gallery ------------------------------------------------------------------------

_fast = os.environ.get("SKLEARN_MTML_DOCS_FAST", "").strip().lower() not in ("", "0", "false")

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": "/plot_",
    "within_subsection_order": "FileNameSortKey",
    # SKLEARN_MTML_DOCS_FAST=1: pages without running the examples (the CI runs them).
    "plot_gallery": "False" if _fast else "True",
    "run_stale_examples": False,
    "abort_on_example_error": False,  # report every failing example, then fail the build
    "doc_module": ("sklearn_mtml",),
    "backreferences_dir": "generated/backreferences",
    "remove_config_comments": True,
    "show_memory": False,
    "min_reported_time": 1,
}

# Examples train small networks: keep their logs quiet and their matplotlib headless.
os.environ.setdefault("MPLBACKEND", "Agg")
warnings.filterwarnings("ignore", category=DeprecationWarning, module="skorch")
warnings.filterwarnings(
    "ignore", message="Matplotlib is currently using agg", category=UserWarning
)

# -- HTML ----------------------------------------------------------------------------------

html_theme = "pydata_sphinx_theme"
html_title = f"sklearn-mtml {release}"
html_static_path = ["_static"]
html_css_files = ["custom.css"]
html_show_sourcelink = False
html_theme_options = {
    "navigation_with_keys": False,
    "header_links_before_dropdown": 6,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_sidebars = {"index": [], "changelog": []}


# -- Public-name cross-references ----------------------------------------------------------


def _resolve_public_alias(app, env, node, contnode):
    """Resolve ``sklearn_mtml.<module>.<Name>`` to the public name the API pages document.

    Docstrings refer to objects by their defining module
    (``sklearn_mtml.fusion.ModalityFusion``) while the API reference documents them where
    users import them (``sklearn_mtml.ModalityFusion``).
    """
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "")
    if not target.startswith("sklearn_mtml."):
        return None
    domain = env.get_domain("py")
    name = target.rsplit(".", 1)[-1]
    parts = target.split(".")
    candidates = [f"sklearn_mtml.{name}"]
    candidates += [".".join(parts[:i] + [name]) for i in range(len(parts) - 2, 1, -1)]
    for sub in ("features", "nn", "datasets", "weighting", "metrics", "callbacks"):
        candidates.append(f"sklearn_mtml.{sub}.{name}")
    objects = domain.objects
    for cand in candidates:
        if cand != target and cand in objects:
            return domain.resolve_xref(
                env, node["refdoc"], app.builder, node["reftype"], cand, node, contnode
            )
    return None


def _doc_comment(obj, attr):
    """The ``#:`` comment of ``attr`` in the ``sklearn_mtml`` module that assigns ``obj``."""
    from sphinx.pycode import ModuleAnalyzer

    for modname, mod in sorted(sys.modules.items()):
        if not modname.startswith("sklearn_mtml") or getattr(mod, attr, None) is not obj:
            continue
        try:
            analyzer = ModuleAnalyzer.for_module(modname)
            analyzer.analyze()
        except Exception:  # noqa: BLE001 - a module without source: try the next one
            continue
        comment = analyzer.attr_docs.get(("", attr))
        if comment:
            return [line for line in comment if line.strip()]
    return []


def _fill_re_exported_docs(app, what, name, obj, options, lines):
    """Give re-exported registries and registrars the ``#:`` comment of their definition.

    ``sklearn_mtml.nn.ARCHITECTURES`` or ``register_weighting`` are assigned, not defined with
    a docstring; their documentation is the ``#:`` comment above the assignment, which autodoc
    only reads in the module where it stands. Registries also list their registered names.
    """
    if what not in ("data", "function", "attribute") or not name.startswith("sklearn_mtml."):
        return
    type_doc = (type(obj).__doc__ or "").strip().splitlines()
    inherited = bool(type_doc) and [line.strip() for line in lines[:1]] == type_doc[:1]
    if inherited or not any(line.strip() for line in lines):  # none, or ``dict``'s own
        lines[:] = _doc_comment(obj, name.rsplit(".", 1)[-1])
    if what in ("data", "attribute") and isinstance(obj, dict) and obj:
        names = ", ".join(f"``{key!r}``" for key in obj)
        lines.extend(["", f"Registered names: {names}."])


def _skip_generated_request_methods(app, what, name, obj, skip, options):
    """Skip ``set_{method}_request``: scikit-learn generates them for metadata routing.

    Their docstrings link to scikit-learn's glossary, which cannot be resolved offline.
    """
    if re.fullmatch(r"set_\w+_request", name):
        return True
    return None


def setup(app):  # noqa: D103
    app.connect("autodoc-skip-member", _skip_generated_request_methods)
    app.connect("missing-reference", _resolve_public_alias)
    # before numpydoc (priority 500), so that numpydoc formats the filled-in text
    app.connect("autodoc-process-docstring", _fill_re_exported_docs, priority=400)
