"""The prose keeps to the code: every count, name and list the README and docs/ state about the
harness is computed here from the code it describes, so a mutant, a configuration, a tensor
name or a status added without its documentation fails a test. (The README's assertions
example runs in tests/test_testing.py.)"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest
from torch import nn

import tests.mutants
import tests.mutants_grad
from lstm_ref import configs, vectors
from lstm_ref.conformance import check_forward
from lstm_ref.gradients import check_gradients
from lstm_ref.report import STATUSES

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
DOCS = ROOT / "docs"


def section(text: str, heading: str) -> str:
    """The text under ``heading`` (a whole heading line) up to the next heading of its level or above."""
    level = heading.split(" ", 1)[0]
    after = text.split(f"\n{heading}\n", 1)[1]
    ends = [m.start() for m in re.finditer(rf"^#{{1,{len(level)}}} ", after, flags=re.MULTILINE)]
    return after[: ends[0]] if ends else after


def table_column(text: str, column: int = 0) -> list[str]:
    """The cells of one column of the Markdown tables in ``text``, backquotes stripped, header rows skipped."""
    def separator(line: str) -> bool:
        return line.startswith("|") and set(line) <= set("|-: ")

    lines = text.splitlines()
    rows = [line for line, below in zip(lines, [*lines[1:], ""])
            if line.startswith("|") and not separator(line) and not separator(below)]
    return [row.strip("|").split("|")[column].strip().strip("`") for row in rows]


def stated(pattern: str, text: str) -> int:
    """The number ``pattern``'s one group matches in ``text`` (commas allowed), failing if absent."""
    found = re.search(pattern, text)
    assert found, f"no {pattern!r} in the prose"
    return int(found.group(1).replace(",", ""))


# ----------------------------------------------------------------------------- README

def test_readme_configuration_counts_are_the_matrices():
    matrix = section(README, "### The matrix")
    assert stated(r"That is ([\d,]+)\s+configurations on CPU", matrix) == len(configs.default_matrix(("cpu",)))
    assert stated(r"\(([\d,]+) more on CUDA\)", matrix) == len(configs.default_matrix(("cuda",)))
    assert stated(r"plus ([\d,]+) gradient configurations", matrix) == len(configs.gradient_matrix(("cpu",)))


def test_readme_quick_samples_have_the_quick_matrix_count():
    samples = re.findall(r"\$ lstm-ref check --quick([^\n]*)\nlstm-ref check: [^\n]*; (\d+) configurations on cpu",
                         README)
    assert len(samples) >= 2
    for options, count in samples:
        kinds = re.search(r"--module (\S+)", options)
        modes = [m.upper() for m in (kinds[1].split(",") if kinds else configs.DEFAULT_MODULES)]
        assert int(count) == len(configs.for_modes(configs.quick_matrix(("cpu",)), modes)), options


def test_quick_matrix_takes_every_axis_value_and_torch_path_as_the_readme_says():
    assert "`--quick` runs grid points that take every axis value at least once (every torch path" in README
    quick = configs.quick_matrix(("cpu",))
    for axis, values in {**configs.AXES, "device": ("cpu",), "torch_path": configs.TORCH_PATHS["cpu"]}.items():
        assert {getattr(config, axis) for config in quick} >= set(values), axis


def reference_lstm_example() -> str:
    return re.search(r"```python\n(.*?)```", section(README, "## The reference LSTM"), flags=re.DOTALL).group(1)


def test_readme_reference_lstm_example_runs():
    namespace: dict = {}
    exec(compile(reference_lstm_example(), f"{ROOT / 'README.md'}:reference LSTM", "exec"), namespace)
    assert namespace["out"].shape == (5, 3, 12) and namespace["h_n"].shape == (4, 3, 6)
    assert namespace["h_1"].shape == namespace["c_1"].shape == (3, 6)


def test_readme_links_to_docs_that_exist():
    for link in re.findall(r"\]\((docs/[^)#]+)", README):
        assert (ROOT / link).exists(), link


# ----------------------------------------------------------------------------- docs/mutants.md

MUTANTS_DOC = (DOCS / "mutants.md").read_text()


def test_forward_mutant_table_is_the_mutant_list():
    forward = section(MUTANTS_DOC, "## Forward mutants")
    names = [mutant.name for mutant in tests.mutants.MUTANTS]
    assert table_column(forward) == names
    assert stated(r"`tests/mutants.py` holds (\d+) mutants", forward) == len(names)


def candidate_kind(factory) -> str:
    return "nn.Module" if isinstance(factory(nn.LSTM(2, 3)), nn.Module) else "plain callable"


def test_gradient_mutant_table_is_the_gradient_mutant_list_with_each_candidates_kind():
    gradient = section(MUTANTS_DOC, "## Gradient mutants")
    mutants = tests.mutants_grad.MUTANTS
    assert table_column(gradient) == list(mutants)
    assert table_column(gradient, 2) == [candidate_kind(factory) for factory in mutants.values()]
    assert stated(r"`tests/mutants_grad.py` adds (\d+) mutants", gradient) == len(mutants)
    plain = [name for name, factory in mutants.items() if candidate_kind(factory) == "plain callable"]
    assert stated(r"(\d+) of them are plain callables", gradient) == len(plain)


def other_mutant_modules() -> list[str]:
    return sorted(path.stem for path in (ROOT / "tests").glob("mutants_*.py") if path.stem != "mutants_grad")


@pytest.mark.parametrize("module", other_mutant_modules())
def test_every_mutant_module_has_its_mutants_in_the_docs(module: str):
    mutants = importlib.import_module(f"tests.{module}").MUTANTS
    names = [getattr(m, "name", m) for m in mutants] if not isinstance(mutants, dict) else list(mutants)
    assert f"`tests/{module}.py`" in MUTANTS_DOC
    assert set(names) <= set(table_column(MUTANTS_DOC)), set(names) - set(table_column(MUTANTS_DOC))


# ----------------------------------------------------------------------------- docs/weights.md

def test_golden_vector_cases_are_described_as_vector_configs_makes_them():
    golden = section((DOCS / "weights.md").read_text(), "## Golden vectors for other languages")
    cases = vectors.vector_configs()
    assert stated(r"(\d+) cases in all", golden) == len(cases) * len(vectors.VECTOR_DTYPES)
    for tag in {case.tag for case in cases if case.tag}:
        assert f"`{tag}`" in golden, tag
    assert "every axis value at least once" in golden and "less any in training mode" in golden
    assert not any(case.train for case in cases)
    for axis in set(configs.AXES) - {"dtype", "device"}:
        assert {getattr(case, axis) for case in cases} == set(configs.AXES[axis]), axis


# ----------------------------------------------------------------------------- docs/report.md

REPORT_DOC = (DOCS / "report.md").read_text()
PARAMETERS = {name for name, _ in nn.LSTM(2, 3, num_layers=2, bidirectional=True, proj_size=2).named_parameters()}


def documented_form(name: str) -> str:
    """A report name as the docs write it: the batch-split suffix dropped, parameters as ``<parameter>``."""
    name = name.split(" [sequences ")[0]
    head, _, last = name.rpartition(".")
    return f"{head}.<parameter>" if last in PARAMETERS else name


def harvested_names() -> tuple[set[str], list[str]]:
    """Tensor names of real reports (results, in-place changes, further calls, gradients and the
    training step), and the names of a batch-split configuration."""
    h0 = configs.Config(initial_state=True)
    packed = configs.Config(input_form="packed", initial_state=True)
    split = [c for c in configs.special_cases() if c.batch_split][0]
    results = [
        check_forward(h0, tests.mutants.gates_if_swapped),
        check_forward(h0, tests.mutants.state_written_back),
        check_forward(packed, tests.mutants.packed_data_as_workspace),
        check_forward(h0, tests.mutants.weights_reordered_in_place),
        check_forward(h0, tests.mutants.results_in_reused_buffer),
        check_forward(split, tests.mutants.gates_if_swapped),
        check_gradients(h0, tests.mutants_grad.forget_gate_sign),
    ]
    names = {t.name for result in results for t in result.tensors}
    return names, [t.name for t in results[-2].tensors]


def test_report_doc_names_every_tensor_a_report_can_hold():
    names, split_names = harvested_names()
    table = " ".join(table_column(section(REPORT_DOC, "## Tensor names")))
    documented = set(re.findall(r"[\w.<>]+", table))
    missing = {documented_form(name) for name in names} - documented
    assert not missing, f"report names missing from docs/report.md: {sorted(missing)}"
    suffix = split_names[0][split_names[0].index(" [sequences "):]
    assert f"`output{suffix}`" in REPORT_DOC, suffix


def test_report_doc_lists_every_status_and_the_tolerance_ratio_formula():
    statuses = re.search(r'"status": ([^\n]*)', REPORT_DOC).group(1)
    assert set(re.findall(r'"(\w+)"', statuses)) == set(STATUSES)
    assert "(atol + (rtol + T*rtol_per_step)*|e|)" in REPORT_DOC
    assert "(atol + (rtol + T·rtol_per_step)·|expected|)" in REPORT_DOC
