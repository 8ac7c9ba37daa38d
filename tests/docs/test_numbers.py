"""The README's and the documentation's numbers come from their sources, and the files
they name exist.

``docs/_ext/attrkit_numbers.py`` computes the facts and checks the README; the documentation
build runs the same check. Here: the README as it is agrees with its sources, and the
check catches a stale number, a hand-typed number and a sentence that no longer matches,
on texts and tables written for the test with hand-computed expectations.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "docs" / "_ext"))

from attrkit_numbers import (  # noqa: E402
    BenchmarkTable,
    Claim,
    Facts,
    check_readme,
    missing_paths,
    percent_range,
    ratio_range,
    readme_problems,
)

TABLE = """\
Benchmark setup
---------------

- machine: Some CPU, 4 logical cores; CPU only, 1 intra-op threads
- image size for ResNet-18, VGG-11, DenseNet-121: 64x64; 7 interleaved repetitions

Deconvolution and Guided Backpropagation (the performance contract)
-------------------------------------------------------------------

Targets, at batch ≥ 8 on the ResNet-18 / DenseNet-121 sizes: time ≤ 1.03 x plain and peak memory ≤ 1.05 x plain; on every row, faster than Captum.

.. list-table::
   :header-rows: 1

   * - model
     - batch
     - method
     - plain time
     - attrkit ÷ plain
     - Captum ÷ plain
     - attrkit ÷ Captum
     - attrkit ÷ plain memory
     - Captum ÷ plain memory
     - targets met
   * - resnet18
     - 1
     - Deconvolution
     - 1 ms
     - 1.500 ± 0.1
     - 2.0 ± 0.1
     - 0.750 ± 0.1
     - —
     - —
     - yes
   * - resnet18
     - 8
     - Deconvolution
     - 5 ms
     - 1.021 ± 0.1
     - 1.2 ± 0.1
     - 0.850 ± 0.1
     - 1.004
     - 1.1
     - yes
   * - densenet121
     - 16
     - Deconvolution
     - 9 ms
     - 0.990 ± 0.1
     - 1.2 ± 0.1
     - 0.825 ± 0.1
     - 1.031
     - 1.1
     - yes

Other methods (not in the contract)
-----------------------------------

.. list-table::
   :header-rows: 1

   * - model
     - batch
     - method
   * - resnet18
     - 8
     - Saliency
"""


def test_the_readme_agrees_with_its_sources():
    """Counts from a collection of the tests and the registry, the demo's record, the
    benchmark table (the documentation build fails on the same messages)."""
    assert check_readme(Facts(ROOT)) == []


def test_benchmark_table_is_read_from_its_contract_section():
    table = BenchmarkTable.parse(TABLE)
    assert (table.cores, table.image_size, table.min_batch) == (4, "64x64", 8)
    assert table.models == ("ResNet-18", "DenseNet-121")
    assert (table.time_target, table.memory_target) == (1.03, 1.05)
    assert [(row.model, row.batch) for row in table.rows] == [
        ("resnet18", 1),
        ("resnet18", 8),
        ("densenet121", 16),
    ]
    # the contract: batch >= 8 only; the table of other methods is not read
    contract = table.contract_rows("Deconvolution")
    assert [row.time for row in contract] == [1.021, 0.990]
    assert [row.memory for row in contract] == [1.004, 1.031]
    assert [row.time for row in table.contract_rows(model="DenseNet-121")] == [0.990]


def test_benchmark_table_without_contract_paragraph_is_an_error():
    with pytest.raises(ValueError, match="Targets, at batch"):
        BenchmarkTable.parse(TABLE.replace("Targets, at batch", "Aims, at batch"))


def test_ranges_are_formatted_as_the_text_writes_them():
    assert percent_range([1.004, 1.031]) == "0.4\u20133.1%"
    assert percent_range([1.013, 1.013]) == "1.3%"
    assert ratio_range([0.99, 1.021]) == "0.990\u20131.021"
    assert ratio_range([1.046]) == "1.046"


FACTS = {"n_methods": "10", "demo_accuracy": "98.0%", "all_faster": "True"}
CLAIMS = (
    Claim(r"(?P<n_methods>\d+)\s+methods", "the registry"),
    Claim(r"(?P<demo_accuracy>[\d.]+%)\s+accuracy", "the demo record"),
)


def problems(text, claims=CLAIMS, fixed=None, facts=FACTS):
    return readme_problems(
        text,
        facts.__getitem__,
        lambda name, argument: pytest.fail(f"no parametrized fact expected: {name}"),
        claims=claims,
        fixed=fixed or {r"8x8": "a size"},
        fact_names=facts,
    )


def test_readme_with_true_numbers_passes():
    text = "It has 10 methods and\n98.0% accuracy on 8x8 digits; `n_steps=64` is code.\n"
    assert problems(text) == []


def test_stale_number_names_both_values_and_the_source():
    found = problems("It has 12 methods and 98.0% accuracy.\n")
    assert found == [
        "README.md:1: says '12' where the registry gives '10' (n_methods)",
    ]


def test_hand_typed_number_outside_claims_and_code_is_reported():
    text = "It has 10 methods and 98.0% accuracy.\nIt runs 4.6% faster.\n\n```\nx = 7\n```\n"
    (found,) = problems(text)
    assert found.startswith("README.md:2: '4.6' is a hand-typed number")


def test_sentence_that_no_longer_matches_its_claim_is_reported():
    (found,) = problems("It has 10 methods.\n")
    assert "no sentence matches the claim" in found
    assert "the demo record" in found


def test_claim_that_must_hold():
    claims = (Claim(r"always faster", "the table", holds=("all_faster",)),)
    assert problems("It is always faster.\n", claims=claims) == []
    found = problems("It is always faster.\n", claims=claims, facts={"all_faster": "False"})
    assert found == ["README.md:1: claims that all faster, which the table no longer shows"]


def test_named_paths_exist(tmp_path):
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_here.py").write_text("")
    page = tmp_path / "page.rst"
    page.write_text(
        "See ``tests/test_here.py``\nand ``tests/test_gone.py`` and tests/<family>.py.\n"
    )
    assert missing_paths(tmp_path, [page]) == [
        "page.rst:2: names tests/test_gone.py, which does not exist"
    ]


def test_the_readme_and_pages_name_existing_files():
    documents = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.rst"))]
    assert missing_paths(ROOT, documents) == []
