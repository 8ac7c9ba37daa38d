"""The numbers the README and the documentation state, computed from their sources.

No number in ``README.md`` or in ``docs/`` may be typed by hand where it can go stale:

- the documentation gets each fact of :func:`compute_facts` as an rST substitution
  (``|demo_accuracy|``), made while it builds;
- the README, which is read as it is on the repository's front page, is checked instead:
  every number in its prose (code is skipped) must lie inside a :data:`CLAIMS` pattern,
  whose named groups must equal the facts of the same name, or inside a :data:`FIXED`
  phrase, which cannot go stale (a formula, a name). :func:`readme_problems` says what
  disagrees, and the documentation build fails on it.

The sources: the registry (method counts), a collection of the tests (test counts), the
demo model's training record, ``pyproject.toml`` and ``docs/performance_table.rst``, which
``benchmarks/run.py`` writes. This module imports neither Sphinx nor attrkit at import
time, so the tests can check it on their own.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CLAIMS",
    "FIXED",
    "BenchmarkRow",
    "BenchmarkTable",
    "Claim",
    "Facts",
    "check_readme",
    "compute_facts",
    "missing_paths",
    "readme_problems",
]


# ---------------------------------------------------------------------- the benchmark table
@dataclass(frozen=True)
class BenchmarkRow:
    """One row of the performance-contract table: ratios to the plain gradient (``None``
    where the table has ``—``)."""

    model: str
    batch: int
    method: str
    time: float
    time_over_captum: float
    memory: float | None


@dataclass(frozen=True)
class BenchmarkTable:
    """What ``docs/performance_table.rst`` says about the performance contract."""

    cores: int
    image_size: str
    min_batch: int
    models: tuple[str, ...]
    time_target: float
    memory_target: float
    rows: tuple[BenchmarkRow, ...]

    @classmethod
    def parse(cls, text: str) -> BenchmarkTable:
        """Read the table that ``benchmarks/run.py`` writes (``ValueError`` if its layout
        changed)."""
        cores = _search(r"(\d+) logical cores", text, "the machine's core count")
        image_size = _search(r"image size for [^:]*: (\d+x\d+)", text, "the image size")
        targets = re.search(
            r"Targets, at batch ≥ (\d+) on the (.+?) sizes: time ≤ ([\d.]+) x plain and "
            r"peak memory ≤ ([\d.]+) x plain",
            text,
        )
        if targets is None:
            raise ValueError("performance_table.rst: no 'Targets, at batch ≥ ...' paragraph")
        contract = re.search(
            r"\(the performance contract\)\n-+\n(.*?)(?:\n[^\n]+\n-{3,}\n|\Z)", text, re.S
        )
        section = contract.group(1) if contract else ""
        rows = []
        for cells in _list_table_rows(section)[1:]:
            model, batch, method, _plain, time, _captum, ours_over_captum, memory = cells[:8]
            rows.append(
                BenchmarkRow(
                    model=model,
                    batch=int(batch),
                    method=method,
                    time=_ratio(time),
                    time_over_captum=_ratio(ours_over_captum),
                    memory=None if memory == "—" else _ratio(memory),
                )
            )
        if not rows:
            raise ValueError("performance_table.rst: the performance-contract table is empty")
        return cls(
            cores=int(cores),
            image_size=image_size,
            min_batch=int(targets.group(1)),
            models=tuple(m.strip() for m in targets.group(2).split("/")),
            time_target=float(targets.group(3)),
            memory_target=float(targets.group(4)),
            rows=tuple(rows),
        )

    def contract_rows(
        self, method: str | None = None, model: str | None = None
    ) -> list[BenchmarkRow]:
        """The rows the targets apply to (the named models at batch ≥ ``min_batch``),
        optionally of one method (its name in the table) or one model (its display name)."""
        keys = {_model_key(m): m for m in self.models}
        rows = [
            row
            for row in self.rows
            if _model_key(row.model) in keys
            and row.batch >= self.min_batch
            and (method is None or row.method == method)
            and (model is None or keys[_model_key(row.model)] == model)
        ]
        if not rows:
            raise ValueError(f"performance_table.rst has no contract row for {method or model}")
        return rows


def _search(pattern: str, text: str, what: str) -> str:
    match = re.search(pattern, text)
    if match is None:
        raise ValueError(f"performance_table.rst: cannot find {what} ({pattern!r})")
    return match.group(1)


def _list_table_rows(text: str) -> list[list[str]]:
    """The cells of the rows of the first ``list-table`` in ``text``."""
    rows: list[list[str]] = []
    for line in text.splitlines():
        if line.startswith("   * - "):
            rows.append([line[7:].strip()])
        elif line.startswith("     - ") and rows:
            rows[-1].append(line[7:].strip())
    return rows


def _ratio(cell: str) -> float:
    """``"1.013 ± 0.025"`` -> 1.013."""
    return float(cell.split("±")[0])


def _model_key(name: str) -> str:
    """``"DenseNet-121"`` and ``"densenet121"`` -> ``"densenet121"``."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def percent(ratio: float) -> str:
    """The overhead of ``ratio`` over 1 in percent, one decimal: 1.0134 -> ``"1.3%"``."""
    return f"{(ratio - 1) * 100:.1f}%"


def target_percent(ratio: float) -> str:
    """A target's allowance in percent, as few digits as it needs: 1.03 -> ``"3%"``."""
    return f"{round((ratio - 1) * 100, 1):g}%"


def percent_range(ratios: list[float]) -> str:
    """``"0.2\u20132.5%"`` (an en dash), or one value when the range has one."""
    low, high = percent(min(ratios)), percent(max(ratios))
    return high if low == high else f"{low[:-1]}\u2013{high}"


def ratio_range(ratios: list[float]) -> str:
    """``"0.992\u20131.010"`` (three decimals, as in the table), or one value."""
    low, high = f"{min(ratios):.3f}", f"{max(ratios):.3f}"
    return high if low == high else f"{low}\u2013{high}"


def and_list(items: list[str]) -> str:
    """``["a", "b", "c"]`` -> ``"a, b and c"``."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


# ---------------------------------------------------------------------------------- the facts
class Facts:
    """The facts of one checkout, each computed once, when first asked for.

    Args:
        root: The repository root (the checkout whose ``attrkit`` and tests are counted).
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._cache: dict[str, object] = {}

    def _once(self, key: str, compute: Callable[[], object]) -> object:
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    # sources
    def benchmark(self) -> BenchmarkTable:
        table = self._once(
            "benchmark",
            lambda: BenchmarkTable.parse(
                (self.root / "docs" / "performance_table.rst").read_text()
            ),
        )
        assert isinstance(table, BenchmarkTable)
        return table

    def demo_record(self) -> dict[str, object]:
        path = self.root / "attrkit" / "demo" / "data" / "digits_cnn.json"
        record = self._once("demo", lambda: json.loads(path.read_text()))
        assert isinstance(record, dict)
        return record

    def collected_tests(self, path: str) -> int:
        """How many tests pytest collects from ``path`` (relative to the root)."""
        count = self._once(f"tests:{path}", lambda: _collect(self.root, path))
        assert isinstance(count, int)
        return count

    def methods(self) -> list[str]:
        import attrkit  # the checkout's, when the root is on sys.path (docs/conf.py puts it)

        return list(attrkit.available_methods())

    def parity_classes(self) -> set[str]:
        """The classes of the parity table (tests/cases.py's METHOD_SPECS)."""
        sys.path.insert(0, str(self.root))
        try:
            from tests.cases import METHOD_SPECS
        finally:
            sys.path.remove(str(self.root))
        return {spec.cls for spec in METHOD_SPECS}

    def model_cases(self) -> int:
        sys.path.insert(0, str(self.root))
        try:
            from tests.cases import ALL_CASES
        finally:
            sys.path.remove(str(self.root))
        return len(ALL_CASES)

    def test_source(self, file_name: str) -> str:
        """The text of the test module ``file_name``, wherever it is under ``tests/``."""
        found = sorted((self.root / "tests").rglob(file_name))
        if len(found) != 1:
            raise ValueError(f"expected one tests/**/{file_name}, found {len(found)}")
        return found[0].read_text()

    def test_constant(self, file_name: str, name: str) -> object:
        """The value of the module-level constant ``name`` of test module ``file_name``
        (a constant expression such as ``16 * 2**20``), read without importing it."""
        for node in ast.parse(self.test_source(file_name)).body:
            if isinstance(node, ast.Assign):
                targets, value = node.targets, node.value
            elif isinstance(node, ast.AnnAssign) and node.value is not None:
                targets, value = [node.target], node.value
            else:
                continue
            if any(isinstance(target, ast.Name) and target.id == name for target in targets):
                expression = ast.Expression(value)
                return eval(compile(expression, file_name, "eval"), {"__builtins__": {}})
        raise ValueError(f"{file_name} has no module-level {name}")

    def hypothesis_examples(self, profile: str) -> int:
        """``max_examples`` of the hypothesis profile ``profile`` (tests/conftest.py)."""
        for node in ast.walk(ast.parse(self.test_source("conftest.py"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "register_profile"
                and node.args
                and ast.literal_eval(node.args[0]) == profile
            ):
                for keyword in node.keywords:
                    if keyword.arg == "max_examples":
                        return int(ast.literal_eval(keyword.value))
        raise ValueError(f"tests/conftest.py registers no hypothesis profile {profile!r}")

    def argument_fuzz_factor(self) -> int:
        """How many times the profile's examples the argument fuzzing draws per method."""
        text = self.test_source("test_fuzz_inputs.py")
        return int(
            _search_in(
                r"max_examples=settings\(\)\.max_examples \* (\d+)", text, "test_fuzz_inputs.py"
            )
        )

    def python_min(self) -> str:
        text = (self.root / "pyproject.toml").read_text()
        return _search_in(r'requires-python\s*=\s*">=\s*([\d.]+)"', text, "pyproject.toml")

    def relu_values(self, model: str) -> int:
        """How many values the ReLUs of benchmark model ``model`` (its name in
        ``benchmarks/_models.py``) see for one image of the benchmark's size: a forward
        pass on the meta device (no memory, no arithmetic) that counts every ReLU's input."""
        import importlib.util

        import torch
        from torch.overrides import TorchFunctionMode

        from attrkit.engine.ops import RELU

        name = "attrkit_benchmark_models"
        models = sys.modules.get(name)
        if models is None:
            spec = importlib.util.spec_from_file_location(
                name, self.root / "benchmarks" / "_models.py"
            )
            if spec is None or spec.loader is None:
                raise ValueError("cannot load benchmarks/_models.py")
            models = sys.modules[name] = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(models)

        class CountReluValues(TorchFunctionMode):
            values = 0

            def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
                kwargs = kwargs or {}
                if func in RELU.spellings:
                    self.values += (args[0] if args else kwargs["input"]).numel()
                return func(*args, **kwargs)

        side = int(self.benchmark().image_size.split("x")[0])
        with torch.device("meta"):
            _spec, network = models.build(model, use_torchvision=False)
            with torch.no_grad(), CountReluValues() as counter:
                network.eval()(torch.zeros(1, 3, side, side))
        return counter.values

    def demo_digits(self) -> str:
        """How many digits ``attrkit demo`` attributes by default."""
        from attrkit.cli import build_parser

        return str(build_parser().parse_args(["demo"]).digits)

    def demo_weights_kb(self) -> str:
        size = (self.root / "attrkit" / "demo" / "data" / "digits_cnn.pt").stat().st_size
        return f"{round(size / 1000)} kB"


def _search_in(pattern: str, text: str, where: str) -> str:
    match = re.search(pattern, text)
    if match is None:
        raise ValueError(f"{where}: nothing matches {pattern!r}")
    return match.group(1)


def _collect(root: Path, path: str) -> int:
    """Collect ``path`` with pytest in a subprocess (the checkout's attrkit on its path)."""
    if not (root / path).exists():
        raise ValueError(f"{path} does not exist")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        # addopts cleared: no xdist workers, no doctest collection of the package
        [
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            "-o",
            "addopts=",
            "-p",
            "no:cacheprovider",
            path,
        ],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    found = re.search(r"^(\d+) tests? collected", done.stdout, flags=re.M)
    if done.returncode != 0 or found is None:
        raise ValueError(
            f"pytest could not collect {path}:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
        )
    return int(found.group(1))


#: Every fact that needs no argument, by name: the documentation's substitutions and the
#: README's claims. A value is the text as the README and the docs write it.
FACT_FUNCTIONS: dict[str, Callable[[Facts], str]] = {
    "python_min": Facts.python_min,
    "n_methods": lambda f: str(len(f.methods())),
    "parity_methods": lambda f: str(len(f.parity_classes())),
    "model_cases": lambda f: str(f.model_cases()),
    "demo_accuracy": lambda f: f"{float(f.demo_record()['test_accuracy']):.1%}",  # type: ignore[arg-type]
    "demo_test_size": lambda f: str(f.demo_record()["n_test"]),
    "demo_train_size": lambda f: str(f.demo_record()["n_train"]),
    "demo_weights_size": Facts.demo_weights_kb,
    "demo_digits": Facts.demo_digits,
    "fuzz_examples_ci": lambda f: f"{f.hypothesis_examples('ci'):,}",
    "fuzz_examples_long": lambda f: f"{f.hypothesis_examples('long'):,}",
    "argument_fuzz_examples_ci": lambda f: (
        f"{f.hypothesis_examples('ci') * f.argument_fuzz_factor():,}"
    ),
    "argument_fuzz_examples_long": lambda f: (
        f"{f.hypothesis_examples('long') * f.argument_fuzz_factor():,}"
    ),
    "soak_long": lambda f: "{} threads x {:,} calls".format(
        *f.test_constant("test_soak.py", "SCALE")["long"]  # type: ignore[index]
    ),
    "leak_calls": lambda f: f"{f.test_constant('test_leaks.py', 'CALLS'):,}",
    "leak_memory_bound": lambda f: f"{f.test_constant('test_leaks.py', 'RSS_BOUND') / 2**20:g} MiB",  # type: ignore[operator]
    "benchmark_cores": lambda f: str(f.benchmark().cores),
    "benchmark_image_size": lambda f: f.benchmark().image_size,
    "benchmark_models": lambda f: and_list(list(f.benchmark().models)),
    "benchmark_batches": lambda f: and_list(
        [str(b) for b in sorted({row.batch for row in f.benchmark().contract_rows()})]
    ),
    "benchmark_time_target": lambda f: target_percent(f.benchmark().time_target),
    "benchmark_memory_target": lambda f: target_percent(f.benchmark().memory_target),
    "benchmark_time_target_ratio": lambda f: f"{f.benchmark().time_target:g}",
    "deconvolution_time": lambda f: percent(
        max(max(r.time for r in f.benchmark().contract_rows("Deconvolution")), 1.0)
    ),
    "guided_backprop_time": lambda f: percent(
        max(max(r.time for r in f.benchmark().contract_rows("Guided Backpropagation")), 1.0)
    ),
    "memory_overhead": lambda f: percent_range(
        [r.memory for r in f.benchmark().contract_rows() if r.memory is not None]
    ),
    "faster_than_captum": lambda f: str(
        all(r.time_over_captum < 1 for r in f.benchmark().contract_rows())
    ),
}


def _per_model_facts() -> Iterator[tuple[str, Callable[[Facts], str]]]:
    """``guided_backprop_time_densenet121`` etc.: one method's time over the plain
    gradient's on one contract model, a ratio or a range of ratios over the contract's
    batch sizes (``"0.992\u20131.010"``)."""
    methods = {"deconvolution": "Deconvolution", "guided_backprop": "Guided Backpropagation"}
    for model in ("ResNet-18", "VGG-11", "DenseNet-121"):
        for key, method in methods.items():
            yield (
                f"{key}_time_{_model_key(model)}",
                lambda f, method=method, model=model: ratio_range(
                    [r.time for r in f.benchmark().contract_rows(method, model)]
                ),
            )


FACT_FUNCTIONS.update(_per_model_facts())
FACT_FUNCTIONS.update(
    {
        f"relu_values_{model}": lambda f, model=model: f"{f.relu_values(model) / 1e6:.1f} million"
        for model in ("resnet18", "vgg11", "densenet121")
    }
)

#: Facts with an argument: the claim's group of that name gives it.
PARAMETRIZED_FACTS: dict[str, tuple[str, Callable[[Facts, str], str]]] = {
    "parity_tests": ("parity_file", lambda f, path: f"{f.collected_tests(path):,}"),
}


def compute_facts(facts: Facts, names: list[str] | None = None) -> dict[str, str]:
    """The facts of :data:`FACT_FUNCTIONS` (or only ``names``), as text.

    Raises:
        ValueError: naming the fact whose source cannot be read.
    """
    values = {}
    for name in names or list(FACT_FUNCTIONS):
        try:
            values[name] = FACT_FUNCTIONS[name](facts)
        except Exception as error:
            raise ValueError(f"cannot compute the fact {name!r}: {error}") from error
    return values


# --------------------------------------------------------------------------------- the README
@dataclass(frozen=True)
class Claim:
    """A sentence of the README that states numbers.

    Attributes:
        pattern: A regular expression (``\\s+`` between words: the README wraps lines).
            Each named group that is a fact's name must equal that fact; a group named
            like the parameter of a parametrized fact gives its argument.
        source: Where the numbers come from, for the message when they disagree.
        holds: Facts that must be ``"True"`` for the sentence to be true.
    """

    pattern: str
    source: str
    holds: tuple[str, ...] = ()


_PERFORMANCE = "docs/performance_table.rst (written by benchmarks/run.py)"

#: The README's sentences with numbers, and where each number comes from.
CLAIMS: tuple[Claim, ...] = (
    Claim(r"Python\s+≥\s+(?P<python_min>[\d.]+\d)", "pyproject.toml's requires-python"),
    Claim(
        r"(?P<demo_accuracy>[\d.]+%)\s+accuracy\s+on\s+the\s+(?P<demo_test_size>\d+)\s+held-out",
        "the demo model's training record, attrkit/demo/data/digits_cnn.json",
    ),
    Claim(
        r"(?P<parity_tests>[\d,]+)\s+parity\s+tests\s+over\s+(?P<model_cases>\d+)\s+model\s+"
        r"cases,\s+(?P<parity_methods>\d+)\s+methods,[^(]*\(`(?P<parity_file>[^`]+)`\)",
        "a pytest collection of the file the sentence names, and tests/cases.py "
        "(ALL_CASES, the classes of METHOD_SPECS)",
    ),
    Claim(
        r"On\s+(?P<benchmark_models>[\w-]+(?:,\s+[\w-]+)*\s+and\s+[\w-]+)\s+"
        r"\((?P<benchmark_cores>\d+)-core\s+CPU,\s+batch\s+(?P<benchmark_batches>\d+"
        r"(?:(?:,\s+\d+)*\s+and\s+\d+)?)\)\s+Deconvolution\s+runs\s+within\s+(?P<deconvolution_time>[\d.]+%)\s+"
        r"of\s+a\s+plain\s+`torch.autograd.grad`\s+and\s+GuidedBackprop\s+within\s+"
        r"(?P<guided_backprop_time>[\d.]+%),\s+with\s+(?P<memory_overhead>[\d.\u2013]+%)\s+more\s+"
        r"memory,\s+and\s+both\s+are\s+faster\s+than\s+Captum\s+on\s+every\s+row",
        _PERFORMANCE,
        holds=("faster_than_captum",),
    ),
)

#: Phrases with digits that cannot go stale, each with its reason.
FIXED: dict[str, str] = {
    r"Captum\s+0\.9\.0": "the Captum release the deviations were found in and are described for",
    r"8x8": "the size of scikit-learn's digits",
    r"float(?:16|32|64)": "dtype names",
    r"\(n\u22121\)/n": "a formula",
    r"Inception\s+v3|ResNet-18|VGG-11|DenseNet-121": "model names",
}

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def _prose(text: str) -> str:
    """``text`` with fenced code blocks and inline code blanked (same length, same lines)."""

    def blank(match: re.Match[str]) -> str:
        return re.sub(r"[^\n]", " ", match.group())

    text = re.sub(r"^```.*?^```", blank, text, flags=re.M | re.S)
    return re.sub(r"`[^`]+`", blank, text)


def readme_problems(
    text: str,
    fact: Callable[[str], str],
    parametrized_fact: Callable[[str, str], str],
    claims: tuple[Claim, ...] = CLAIMS,
    fixed: Mapping[str, str] = FIXED,
    fact_names: Collection[str] | None = None,
) -> list[str]:
    """What is wrong with the numbers of README text ``text``: one message per claim
    whose numbers disagree with their facts or that no longer matches, and per number
    that is neither claimed nor fixed.

    Args:
        text: The README.
        fact: A fact's value by name (see :data:`FACT_FUNCTIONS`).
        parametrized_fact: ``(name, argument) ->`` value (see :data:`PARAMETRIZED_FACTS`).
        claims: The claims.
        fixed: The fixed phrases.
        fact_names: The names of the facts ``fact`` knows (default: :data:`FACT_FUNCTIONS`);
            a claim's other groups are not checked.
    """
    known = FACT_FUNCTIONS if fact_names is None else fact_names
    problems = []
    covered: list[tuple[int, int]] = []
    for claim in claims:
        match = re.search(claim.pattern, text)
        if match is None:
            problems.append(
                f"README.md: no sentence matches the claim {claim.pattern!r} (numbers from "
                f"{claim.source}); if the sentence changed, change CLAIMS in "
                f"docs/_ext/attrkit_numbers.py with it"
            )
            continue
        covered.append(match.span())
        groups = match.groupdict()
        line = text.count("\n", 0, match.start()) + 1
        for name, stated in groups.items():
            try:
                if name in PARAMETRIZED_FACTS:
                    true = parametrized_fact(name, groups[PARAMETRIZED_FACTS[name][0]])
                elif name in known:
                    true = fact(name)
                else:
                    continue
            except Exception as error:
                problems.append(f"README.md:{line}: cannot check {stated!r} ({name}): {error}")
                continue
            if " ".join(stated.split()) != true:
                problems.append(
                    f"README.md:{line}: says {stated!r} where {claim.source} gives {true!r} "
                    f"({name})"
                )
        for name in claim.holds:
            try:
                holds = fact(name) == "True"
            except Exception as error:
                problems.append(f"README.md:{line}: cannot check that {name}: {error}")
                continue
            if not holds:
                problems.append(
                    f"README.md:{line}: claims that {name.replace('_', ' ')}, which "
                    f"{claim.source} no longer shows"
                )
    for pattern in fixed:
        covered += [m.span() for m in re.finditer(pattern, text)]
    for number in _NUMBER.finditer(_prose(text)):
        if not any(start <= number.start() and number.end() <= end for start, end in covered):
            line_number = text.count("\n", 0, number.start()) + 1
            line = text.splitlines()[line_number - 1].strip()
            problems.append(
                f"README.md:{line_number}: {number.group()!r} is a hand-typed number "
                f"(in {line!r}): state it in a sentence that CLAIMS in "
                f"docs/_ext/attrkit_numbers.py checks against its source, or list it in "
                f"FIXED there if it cannot go stale"
            )
    return problems


def check_readme(facts: Facts) -> list[str]:
    """:func:`readme_problems` of the README of ``facts``' checkout against its facts."""

    def fact(name: str) -> str:
        return FACT_FUNCTIONS[name](facts)

    def parametrized(name: str, argument: str) -> str:
        return PARAMETRIZED_FACTS[name][1](facts, argument)

    return readme_problems((facts.root / "README.md").read_text(), fact, parametrized)


_PATH = re.compile(
    r"(?<![\w/.-])((?:attrkit|benchmarks|docs|scripts|tests)/[\w/.-]*\w\.(?:py|rst|json|toml|md))"
)


def missing_paths(root: Path, documents: list[Path]) -> list[str]:
    """The repository paths (``tests/test_reference.py``) that ``documents`` name and that
    do not exist: a page that sends the reader to a moved file has gone stale too."""
    problems = []
    for document in documents:
        text = document.read_text()
        for match in _PATH.finditer(text):
            if not (root / match.group(1)).exists():
                line = text.count("\n", 0, match.start()) + 1
                problems.append(
                    f"{document.relative_to(root)}:{line}: names {match.group(1)}, which does "
                    f"not exist"
                )
    return problems
