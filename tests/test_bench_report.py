"""``lstm-ref bench-report``: pytest-benchmark JSON in, ratio table, details and a PNG out."""

import json

import pytest

from lstm_ref import bench_report
from lstm_ref.cli import main


def entry(implementation, size, ratio, mode="forward", target=None, step=1e-5):
    info = {"implementation": implementation, "size": size, "mode": mode, "seconds_per_call": step * 100,
            "seconds_per_step": step, "gflops": 50.0, "fraction_of_gemm_peak": 0.25,
            "ratio_to_nn_lstm": ratio}
    if target is not None:
        info["target_ratio"] = target
    return {"name": f"test_lstm_speed[{size}-{implementation}-{mode}]", "extra_info": info}


@pytest.fixture
def results_file(tmp_path):
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"benchmarks": [
        entry("nn.LSTM-onednn", "T100-N64-I512-H512", 1.0),
        entry("lstm_ref-fast", "T100-N64-I512-H512", 1.2, target=1.25),
        entry("nn.LSTM-onednn", "T128-N1-I32-H32", 1.0),
        entry("lstm_ref-fast", "T128-N1-I32-H32", 4.5, target=3.0),
        entry("lstm_ref-fast", "T128-N1-I32-H32", 9.0, mode="forward_backward"),
        {"name": "untimed", "extra_info": {"implementation": "x"}},
    ]}))
    return path


def test_ratio_table_has_a_row_per_size_and_marks_targets(results_file):
    table = bench_report.ratio_table(bench_report.load_results(results_file))
    rows = table.splitlines()
    assert rows[0] == "| size | nn.LSTM-onednn | lstm_ref-fast | fast-path target | met |"
    assert rows[2] == "| T100-N64-I512-H512 | 1.00x | 1.20x | <= 1.25x | yes |"
    assert rows[3] == "| T128-N1-I32-H32 | 1.00x | 4.50x | <= 3x | **no** |"


def test_untimed_entries_are_dropped_and_modes_kept_apart(results_file):
    results = bench_report.load_results(results_file)
    assert len(results) == 5
    assert "9.00x" in bench_report.ratio_table(results, "forward_backward")
    assert "9.00x" not in bench_report.ratio_table(results, "forward")


def test_detail_table_shows_time_per_step_and_share_of_peak(results_file):
    details = bench_report.detail_table(bench_report.load_results(results_file)).splitlines()
    assert len(details) == 2 + 5
    assert "| 10 µs | 50.0 | 25% | 1.20x |" in details[3]


@pytest.mark.parametrize(("flags", "exit_code"), [([], 0), (["--check-targets"], 1)],
                         ids=["report_only", "check_targets_missed"])
def test_command_prints_tables_and_exit_code(results_file, capsys, flags, exit_code):
    assert main(["bench-report", str(results_file), *flags]) == exit_code
    out = capsys.readouterr().out
    assert "## Ratio to nn.LSTM (oneDNN), forward" in out and "## Details" in out


def test_plot_writes_a_png(results_file, tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "times.png"
    assert main(["bench-report", str(results_file), "--plot", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(("content", "message"), [
    ("not json", "is not JSON"),
    ('{"machine_info": {}}', "not a pytest-benchmark JSON file"),
    ('{"benchmarks": [{"name": "x", "extra_info": {}}]}', "holds no timed lstm_ref benchmark"),
], ids=["not_json", "no_benchmarks_list", "nothing_timed"])
def test_bad_files_are_usage_errors(tmp_path, capsys, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    assert main(["bench-report", str(path)]) == 2
    assert message in capsys.readouterr().err


def test_a_missing_file_is_a_usage_error(tmp_path, capsys):
    assert main(["bench-report", str(tmp_path / "absent.json")]) == 2
    assert "absent.json" in capsys.readouterr().err
