"""Mutation testing of the mathematical core, without dependencies.

Each *mutant* is the module with one small change (a comparison bound, an operator, a
constant, a negated condition, a return value replaced by ``None``, ...). A mutant is *killed*
when the module's tests fail (or time out) against it, and *survives* when they pass: a
surviving mutant is behaviour that no test pins. The score is killed / (killed + survived).

Usage (from the repository root)::

    python tools/mutate.py                      # 40 sampled mutants per core module
    python tools/mutate.py sklearn_mtml/metrics.py -n 0      # every mutant of one module
    python tools/mutate.py --list sklearn_mtml/nn/fusion.py  # print the mutants, run nothing
    python tools/mutate.py --jobs 2 --fail-under 90          # two workers; exit 1 below 90 %

The sample is stable: mutants are ordered by a hash of the seed and of what they change
(enclosing function, source text, mutation, occurrence), not by line numbers, so an edit
elsewhere in the module does not reshuffle it. Each run copies ``sklearn_mtml``, ``tests``
and ``pyproject.toml`` to a temporary folder, writes the mutated module there and runs
``pytest -x -q`` on the module's test files (:data:`MODULES`) with that copy first on
``sys.path``, in a child forked from a process that has already imported numpy, torch,
scikit-learn and pytest (``--no-fork``: a fresh interpreter per mutant); the working tree is
never modified. ``--skip-test FILE`` leaves a test file out, to see what it contributes.

Not mutated: docstrings and other strings (messages), f-strings, type annotations,
decorators, ``raise`` statements (their messages), ``__all__``. Equivalent mutants (no
behaviour can tell them apart) are listed in :data:`EQUIVALENT` with the reason and are
neither sampled nor counted.
"""

from __future__ import annotations

import argparse
import ast
import copy
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: The modules under mutation and the test files run against each mutant.
MODULES: dict[str, list[str]] = {
    "sklearn_mtml/tasks.py": ["tests/test_core_values.py", "tests/test_task_inference.py",
                              "tests/test_estimator.py"],
    "sklearn_mtml/weighting.py": ["tests/test_core_values.py", "tests/test_weighting.py"],
    "sklearn_mtml/metrics.py": ["tests/test_core_values.py", "tests/test_metrics.py"],
    "sklearn_mtml/blocks.py": ["tests/test_core_values.py", "tests/test_blocks.py"],
    "sklearn_mtml/nn/fusion.py": ["tests/test_core_values.py", "tests/test_nn.py"],
}

#: Equivalent mutants, which no test can kill, with the reason: a mutant is excluded when it
#: is in the module, its source line contains the line snippet, and its original and mutated
#: source equal the last two items (``"*"``: any). Whitespace is normalised to single spaces.
EQUIVALENT: dict[tuple[str, str, str, str], str] = {
    ("sklearn_mtml/weighting.py", "steps = self._steps.clamp_min(1)", "1", "(0)"):
        "a zero step count only occurs for a task never present, whose step torch.where "
        "discards (a NaN there never reaches the weights)",
    ("sklearn_mtml/weighting.py", "if j == i or sq_norms[j] <= 0:", "sq_norms[j] <= 0",
     "(sq_norms[j] < 0)"):
        "a zero gradient g_j has g_i·g_j = 0, which is no conflict: nothing is projected",
    ("sklearn_mtml/weighting.py", "if dot < 0:", "dot < 0", "(dot <= 0)"):
        "projecting when g_i·g_j = 0 subtracts 0·g_j: the same gradient",
    ("sklearn_mtml/weighting.py", "l_grad = ((g - target).abs() * p).sum()",
     "(g - target).abs() * p", "((g - target).abs() / p)"):
        "each w_t only enters its own term; the terms of absent tasks (p = 0) only move "
        "their own weights, which torch.where discards, and present ones divide by 1",
    ("sklearn_mtml/blocks.py", "if len(row_shape) > 1 and len(names) == row_shape[-1]:",
     "len(row_shape) > 1", "(len(row_shape) >= 1)"):
        "for a 1-D row the last axis is the whole row, whose names already matched the "
        "flattened count above",
    ("sklearn_mtml/blocks.py", "if len(row_shape) > 1 and len(names) == row_shape[-1]:",
     "1", "(0)"):
        "for a 1-D row the last axis is the whole row, whose names already matched the "
        "flattened count above",
    ("sklearn_mtml/blocks.py", 'letters = "t" if len(lead) == 1 else "ijklmn"', "1", "(0)"):
        "with one leading axis the suffix is always 't': these letters are never read",
    ("sklearn_mtml/blocks.py", "low = int(arr.min()) if arr.size else 0", "0", "(1)"):
        "an empty block has no id to check: its low bound is never compared with anything "
        "that could fail",
    ("sklearn_mtml/blocks.py", "if not want_sparse and absent != 0 and not mask.all():",
     "not want_sparse and absent != 0 and not mask.all()",
     "(not want_sparse or absent != 0 or (not mask.all()))"):
        "the rows it would also fill are already 0 and absent is 0 whenever the result is "
        "sparse: the same values",
    ("sklearn_mtml/tasks.py", "idx = np.array([known.get(v, 0) for v in", "0", "(1)"):
        "an unknown label is compared with some class and found unequal, whichever",
    ("sklearn_mtml/tasks.py", 'if values.dtype.kind != "O" or values.size == 0:', "0",
     "(1)"):
        "fit needs two classes, so a one-row column fails whatever its dtype, and an empty "
        "one has no type to take",
    ("sklearn_mtml/tasks.py", "return False", "False", "None"):
        "_is_number's result is only read as a truth value, and None is false too",
    ("sklearn_mtml/nn/fusion.py", "m = mask.to(embeddings[0].dtype)", "0", "(1)"):
        "a 0/1 mask is exact in every float dtype and type promotion gives the same "
        "concatenation whichever embedding's dtype the mask takes",
}

SKIP_CALLS = {"warn"}  # warnings.warn(message, category, stacklevel): messages only
CMP_SWAP = {
    ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq, ast.Is: ast.IsNot, ast.IsNot: ast.Is, ast.In: ast.NotIn,
    ast.NotIn: ast.In,
}
BIN_SWAP = {
    ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult,
    ast.FloorDiv: ast.Div, ast.Mod: ast.FloorDiv, ast.Pow: ast.Mult, ast.BitAnd: ast.BitOr,
    ast.BitOr: ast.BitAnd,
}
NAME_SWAP = {"all": "any", "any": "all", "min": "max", "max": "min", "argmin": "argmax",
             "argmax": "argmin", "clamp_min": "clamp_max", "clamp_max": "clamp_min"}


@dataclass
class Mutant:
    """One change of one module."""

    module: str
    line: int
    where: str  # enclosing function or class
    original: str  # source of the node before the change
    context: str  # the source line(s) holding the node, whitespace normalised
    mutated: str  # its source after
    start: int  # byte offsets of the replaced segment in the module
    end: int
    key: str = ""  # stable identity (for sampling and the equivalence table)

    @property
    def label(self) -> str:
        """``module:line (where): original -> mutated``, shortened."""
        def short(s: str) -> str:
            s = " ".join(s.split())
            return s if len(s) <= 70 else s[:67] + "..."
        return (f"{self.module}:{self.line} ({self.where}): `{short(self.original)}` -> "
                f"`{short(self.mutated)}`")

    def apply(self, source: bytes) -> bytes:
        """The module's source with this change."""
        return source[:self.start] + self.mutated.encode() + source[self.end:]


class _Collector(ast.NodeVisitor):
    """Walk a module and record every mutation site."""

    def __init__(self, module: str, source: bytes):
        self.module, self.source = module, source
        self.line_starts = [0]
        for i, b in enumerate(source):
            if b == 0x0A:
                self.line_starts.append(i + 1)
        self.scope: list[str] = []
        self.mutants: list[Mutant] = []

    # -- helpers ---------------------------------------------------------------------------
    def _span(self, node: ast.AST) -> tuple[int, int]:
        start = self.line_starts[node.lineno - 1] + node.col_offset
        end = self.line_starts[node.end_lineno - 1] + node.end_col_offset
        return start, end

    def _add(self, node: ast.AST, mutated: str) -> None:
        start, end = self._span(node)
        original = self.source[start:end].decode()
        if " ".join(original.split()) == " ".join(mutated.split()):
            return
        lines = self.source[self.line_starts[node.lineno - 1]:
                            self.line_starts[node.end_lineno] if node.end_lineno < len(
                                self.line_starts) else len(self.source)].decode()
        self.mutants.append(Mutant(self.module, node.lineno, ".".join(self.scope) or "<module>",
                                   original, " ".join(lines.split()), mutated, start, end))

    def _replace(self, node: ast.expr, new: ast.expr) -> None:
        self._add(node, f"({ast.unparse(new)})")

    # -- scopes and skipped regions ----------------------------------------------------------
    def _visit_scope(self, node) -> None:
        self.scope.append(node.name)
        body = node.body
        if (body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            body = body[1:]  # docstring
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args
            for default in [*args.defaults, *[d for d in args.kw_defaults if d is not None]]:
                self.visit(default)
        else:
            for base in node.bases:
                self.visit(base)
        for stmt in body:
            self.visit(stmt)
        self.scope.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _visit_scope

    def visit_Module(self, node: ast.Module) -> None:  # noqa: D102
        for stmt in node.body:
            if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
                continue  # module docstring
            if isinstance(stmt, ast.Assign) and any(
                    isinstance(t, ast.Name) and t.id == "__all__" for t in stmt.targets):
                continue
            if isinstance(stmt, (ast.Import, ast.ImportFrom)):
                continue
            self.visit(stmt)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:  # noqa: D102
        if node.value is not None:
            self.visit(node.value)

    def visit_Raise(self, node: ast.Raise) -> None:  # noqa: D102
        pass

    def visit_JoinedStr(self, node: ast.JoinedStr) -> None:  # noqa: D102
        pass

    def visit_Call(self, node: ast.Call) -> None:  # noqa: D102
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name in SKIP_CALLS:
            for kw in node.keywords:
                self.visit(kw.value)
            return
        self.generic_visit(node)

    # -- mutations ---------------------------------------------------------------------------
    def visit_Compare(self, node: ast.Compare) -> None:  # noqa: D102
        for i, op in enumerate(node.ops):
            swap = CMP_SWAP.get(type(op))
            if swap is not None:
                new = copy.deepcopy(node)
                new.ops[i] = swap()
                self._replace(node, new)
        self.generic_visit(node)

    def visit_BinOp(self, node: ast.BinOp) -> None:  # noqa: D102
        swap = BIN_SWAP.get(type(node.op))
        if swap is not None:
            new = copy.deepcopy(node)
            new.op = swap()
            self._replace(node, new)
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:  # noqa: D102
        swap = BIN_SWAP.get(type(node.op))
        if swap is not None:
            new = copy.deepcopy(node)
            new.op = swap()
            self._add(node, ast.unparse(new))
        self.generic_visit(node)

    def visit_BoolOp(self, node: ast.BoolOp) -> None:  # noqa: D102
        new = copy.deepcopy(node)
        new.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        self._replace(node, new)
        self.generic_visit(node)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> None:  # noqa: D102
        if isinstance(node.op, (ast.Not, ast.USub, ast.Invert)):
            self._replace(node, node.operand)
        operand = node.operand
        if (isinstance(node.op, ast.USub) and isinstance(operand, ast.Constant)
                and _is_number(operand.value)):
            self._number(node, -operand.value)  # ``-1`` is one constant, not ``-(0)``
            return
        self.generic_visit(node)

    def _number(self, node: ast.expr, v: float) -> None:
        new = type(v)(1) if v == 0 else type(v)(0) if v == 1 else v + 1
        self._add(node, f"({new!r})")

    def visit_Constant(self, node: ast.Constant) -> None:  # noqa: D102
        v = node.value
        if isinstance(v, bool):
            self._add(node, repr(not v))
        elif _is_number(v):
            self._number(node, v)

    def visit_Attribute(self, node: ast.Attribute) -> None:  # noqa: D102
        swap = NAME_SWAP.get(node.attr)
        if swap is not None and isinstance(node.ctx, ast.Load):
            new = copy.deepcopy(node)
            new.attr = swap
            self._replace(node, new)
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:  # noqa: D102
        if node.id in ("min", "max") and isinstance(node.ctx, ast.Load):
            self._add(node, NAME_SWAP[node.id])

    def _negate_test(self, test: ast.expr) -> None:
        if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            return  # the same mutant as dropping the ``not``
        if isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(
                test.ops[0], (ast.Eq, ast.NotEq, ast.Is, ast.IsNot, ast.In, ast.NotIn)):
            return  # the same mutant as swapping the operator
        self._replace(test, ast.UnaryOp(op=ast.Not(), operand=test))

    def visit_If(self, node: ast.If) -> None:  # noqa: D102
        self._negate_test(node.test)
        self.generic_visit(node)

    def visit_IfExp(self, node: ast.IfExp) -> None:  # noqa: D102
        self._negate_test(node.test)
        self.generic_visit(node)

    def visit_While(self, node: ast.While) -> None:  # noqa: D102
        self._negate_test(node.test)
        self.generic_visit(node)

    def visit_Return(self, node: ast.Return) -> None:  # noqa: D102
        value = node.value
        if value is not None and not (isinstance(value, ast.Constant) and value.value is None):
            self._add(value, "None")
        self.generic_visit(node)

    def visit_comprehension(self, node: ast.comprehension) -> None:  # noqa: D102
        for cond in node.ifs:
            self._negate_test(cond)
        self.generic_visit(node)


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _equivalent(m: Mutant) -> str | None:
    original = " ".join(m.original.split())
    for (module, line, before, after), reason in EQUIVALENT.items():
        if (module == m.module and line in m.context and before in ("*", original)
                and after in ("*", m.mutated)):
            return reason
    return None


def collect(module: str, root: Path = ROOT) -> tuple[bytes, list[Mutant]]:
    """The source of ``module`` (a path relative to ``root``) and its mutants, in order."""
    source = (root / module).read_bytes()
    collector = _Collector(module, source)
    collector.visit(ast.parse(source))
    seen: dict[str, int] = {}
    mutants = []
    for m in collector.mutants:
        try:
            ast.parse(m.apply(source))
        except SyntaxError:  # pragma: no cover - a bug of this tool
            print(f"skipped (syntax error): {m.label}", file=sys.stderr)
            continue
        base = f"{m.where}|{' '.join(m.original.split())}|{m.mutated}"
        seen[base] = seen.get(base, 0) + 1
        m.key = f"{base}|{seen[base]}"
        mutants.append(m)
    return source, mutants


def sample(mutants: list[Mutant], n: int, seed: int) -> list[Mutant]:
    """``n`` mutants (all when ``n <= 0``), chosen by a hash of the seed and their key."""
    def rank(m: Mutant) -> str:
        return hashlib.sha256(f"{seed}|{m.module}|{m.key}".encode()).hexdigest()
    chosen = sorted(mutants, key=rank)
    if n > 0:
        chosen = chosen[:n]
    return sorted(chosen, key=lambda m: (m.line, m.start))


#: Run by a server process in a workspace: import the heavy dependencies once, then for each
#: request fork a child that runs pytest (so each mutant starts from a process where numpy,
#: torch, scikit-learn and pytest are already imported, but the package is not).
_SERVER = r"""
import json, os, signal, sys, time
sys.dont_write_bytecode = True
import numpy, scipy.sparse, pandas, torch, sklearn, sklearn.model_selection, skorch, pytest
import sklearn.utils.estimator_checks
for line in sys.stdin:
    req = json.loads(line)
    pid = os.fork()
    if pid == 0:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        try:
            code = pytest.main(req["args"])
        except BaseException:
            code = 99
        os._exit(int(code))
    deadline = time.monotonic() + req["timeout"]
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            code = os.waitstatus_to_exitcode(status)
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            code = "timeout"
            break
        time.sleep(0.05)
    print(json.dumps(code), flush=True)
"""


class _Workspace:
    """A copy of the package and tests in which one module at a time is mutated."""

    def __init__(self, fork: bool, source: Path = ROOT) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="mutate-"))
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        for name in ("sklearn_mtml", "tests"):
            shutil.copytree(source / name, self.dir / name, ignore=ignore)
        shutil.copy2(source / "pyproject.toml", self.dir / "pyproject.toml")
        self.env = dict(os.environ, PYTHONPATH=str(self.dir), PYTHONDONTWRITEBYTECODE="1",
                        OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
        self.env.setdefault("SKLEARN_MTML_DATA", str(ROOT.parent / "shared" / "data"))
        self.server = None
        if fork:
            self.server = subprocess.Popen([sys.executable, "-c", _SERVER], cwd=self.dir,
                                           env=self.env, stdin=subprocess.PIPE,
                                           stdout=subprocess.PIPE, text=True)

    def run(self, module: str, text: bytes, tests: list[str], timeout: float) -> str:
        """Run ``tests`` with ``module`` replaced by ``text``: killed, survived or timeout."""
        path = self.dir / module
        original = path.read_bytes()
        path.write_bytes(text)
        args = ["-x", "-q", "-p", "no:cacheprovider", "--no-header", "-o", "addopts=", *tests]
        try:
            if self.server is not None:
                self.server.stdin.write(json.dumps({"args": args, "timeout": timeout}) + "\n")
                self.server.stdin.flush()
                code = json.loads(self.server.stdout.readline())
            else:
                try:
                    code = subprocess.run([sys.executable, "-m", "pytest", *args], cwd=self.dir,
                                          env=self.env, timeout=timeout,
                                          capture_output=True).returncode
                except subprocess.TimeoutExpired:
                    code = "timeout"
        finally:
            path.write_bytes(original)
        if code in (4, 5):  # usage error, no tests collected
            raise RuntimeError(f"pytest {' '.join(args)} exited with {code}")
        return "timeout" if code == "timeout" else "survived" if code == 0 else "killed"

    def close(self) -> None:
        """Stop the server and remove the copy."""
        if self.server is not None:
            self.server.stdin.close()
            self.server.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:  # noqa: D103
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", default=list(MODULES),
                        help="modules to mutate (default: the core modules of MODULES)")
    parser.add_argument("-n", type=int, default=40,
                        help="mutants sampled per module; 0 for all (default: 40)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default: 0)")
    parser.add_argument("--jobs", type=int, default=1, help="parallel workers (default: 1)")
    parser.add_argument("--timeout", type=float, default=0,
                        help="seconds per mutant (default: 5x the clean run, at least 60)")
    parser.add_argument("--fail-under", type=float, default=0,
                        help="exit 1 when a module kills fewer than this %% of its mutants")
    parser.add_argument("--skip-test", action="append", default=[], metavar="FILE",
                        help="leave this test file out (to see what it contributes)")
    parser.add_argument("--match", default="", metavar="TEXT",
                        help="only mutants whose source line or label contains TEXT")
    parser.add_argument("--list", action="store_true", help="list the mutants and stop")
    parser.add_argument("--no-fork", action="store_true",
                        help="start a fresh interpreter per mutant instead of forking one that "
                             "has imported the dependencies (slower; forking needs POSIX)")
    args = parser.parse_args(argv)
    # a terminated run still removes its temporary copies (the ``finally`` below)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    for module in args.modules:
        if Path(module).as_posix() not in MODULES:
            parser.error(f"no test files known for {module}; add it to MODULES")
    # each module's source is read once: the clean run and every mutant use these bytes,
    # whatever edits the working tree gets while the mutants run
    plans, sources = {}, {}
    for module in args.modules:
        module = Path(module).as_posix()
        sources[module], mutants = collect(module)
        n_equivalent = sum(_equivalent(m) is not None for m in mutants)
        kept = [m for m in mutants if _equivalent(m) is None
                and (args.match in m.context or args.match in m.label)]
        plans[module] = sample(kept, args.n, args.seed)
        print(f"{module}: {len(mutants)} mutants, {n_equivalent} equivalent, "
              f"{len(plans[module])} to run", flush=True)
        if args.list:
            for m in plans[module]:
                print("   ", m.label)
            for m in mutants:
                if _equivalent(m) is not None:
                    print("    equivalent:", m.label, "--", _equivalent(m))
    if args.list:
        return 0

    fork = hasattr(os, "fork") and not args.no_fork
    workspaces: list[_Workspace] = []
    free: list[_Workspace] = []
    results: dict[str, list[tuple[Mutant, str]]] = {}
    broken: list[str] = []
    try:
        workspaces.append(_Workspace(fork))
        workspaces += [_Workspace(fork, workspaces[0].dir) for _ in range(args.jobs - 1)]
        free.extend(workspaces)
        for module, chosen in plans.items():
            tests = [t for t in MODULES[module]
                     if (workspaces[0].dir / t).exists() and t not in args.skip_test]
            source = sources[module]
            t0 = time.perf_counter()
            clean = workspaces[0].run(module, source, tests, timeout=1800)
            clean_s = time.perf_counter() - t0
            if clean != "survived":
                print(f"{module}: the tests fail without any mutation; fix them first",
                      flush=True)
                broken.append(module)
                continue
            timeout = args.timeout or max(60.0, 5 * clean_s)
            print(f"{module}: clean run {clean_s:.1f} s, timeout {timeout:.0f} s", flush=True)

            def one(m: Mutant, module=module, source=source, tests=tests, timeout=timeout):
                ws = free.pop()
                try:
                    return m, ws.run(module, m.apply(source), tests, timeout)
                finally:
                    free.append(ws)

            with ThreadPoolExecutor(len(workspaces)) as pool:
                out = []
                for m, status in pool.map(one, chosen):
                    print(f"  {status:8s} {m.label}", flush=True)
                    out.append((m, status))
            results[module] = out
    finally:
        for ws in workspaces:
            ws.close()

    print("\n| module | killed | survived | score |\n|---|---:|---:|---:|")
    worst = 100.0
    for module, out in results.items():
        killed = sum(s != "survived" for _, s in out)
        total = len(out)
        score = 100.0 * killed / total if total else 100.0
        worst = min(worst, score)
        print(f"| {module} | {killed} | {total - killed} | {score:.1f} % |")
    survivors = [m for out in results.values() for m, s in out if s == "survived"]
    if survivors:
        print("\nsurvivors:")
        for m in survivors:
            print("   ", m.label)
    if broken:
        print(f"\nnot run, their tests fail unmutated: {', '.join(broken)}")
        return 2
    return 1 if worst < args.fail_under else 0


if __name__ == "__main__":
    sys.exit(main())
