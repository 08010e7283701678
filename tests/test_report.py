"""lstm-ref check's table and its versioned JSON report."""

import json

from lstm_ref import cli
from lstm_ref.candidates import DEFAULT_IMPL
from lstm_ref.configs import quick_matrix
from lstm_ref.report import REPORT_VERSION


def test_json_report_has_every_configuration_its_errors_and_the_environment(tmp_path, capsys):
    path = tmp_path / "report.json"
    assert cli.main(["check", "--quick", "--module", "lstm", "--no-isolate", "--seed", "3", "--json", str(path)]) == 0
    report = json.loads(path.read_text())
    assert report["report_version"] == REPORT_VERSION
    environment = report["environment"]
    assert environment["seed"] == 3 and environment["implementation"] == DEFAULT_IMPL
    assert {"torch", "python", "platform", "cuda_device", "tf32"} <= set(environment)
    assert [r["config"]["id"] for r in report["results"]] == [c.id for c in quick_matrix(("cpu",))]
    assert report["summary"]["passed"] == len(report["results"])
    for result in report["results"]:
        assert result["status"] == "passed"
        assert {"output", "h_n", "c_n"} <= {t["name"].split(" [")[0] for t in result["tensors"]}
        for tensor in result["tensors"]:
            assert 0 <= tensor["tolerance_ratio"] < 1 and tensor["max_abs"] >= 0
            assert len(tensor["worst_index"]) > 0
    assert f"report written to {path}" in capsys.readouterr().out


def test_table_flags_the_axis_value_that_fails(capsys):
    mutant = "tests.mutants:reverse_direction_runs_forward"
    assert cli.main(["check", "--quick", "--no-isolate", "--dtype", "float64", "--impl", mutant]) == 1
    rows = {tuple(line.split()[:2]): line for line in capsys.readouterr().out.splitlines() if line[:1].isalpha()}
    assert rows["bidirectional", "False"].split()[3] == "0"  # the failed column
    assert rows["bidirectional", "True"].split()[3] != "0"
    assert rows["bidirectional", "True"].endswith("<-- fails only at some values")
    assert not rows["num_layers", "2"].endswith("values")  # fails at every layer count


def test_failures_are_described_with_their_tensors_and_a_reproducer(capsys):
    cli.main(["check", "--quick", "--no-isolate", "--impl", "tests.mutants:gates_if_swapped", "--show-failures", "1"])
    out = capsys.readouterr().out
    first = quick_matrix(("cpu",))[0]
    assert f"{first.id}: failed: output, h_n, c_n" in out  # the headline names the failed tensors first
    assert "out of tolerance\n  output: 90/90 elements out of tolerance" in out
    assert out.count("  reproduce: python -X faulthandler -c ") == 1
    assert f"{first.reproducer('lstm_ref.conformance.check_forward', 'tests.mutants:gates_if_swapped')}" in out
    assert "more failures (--show-failures N, or --json)" in out
