"""The pytest plugin end to end (in-process pytester runs of the installed suite)."""

from pathlib import Path

import pytest

import lstm_ref.suite
from lstm_ref import configs
from lstm_ref.candidates import DEFAULT_IMPL

SUITE = ["--pyargs", "lstm_ref.suite.test_forward", "-p", "no:cacheprovider"]
TEST_FILE = Path(lstm_ref.suite.__file__).parent / "test_forward.py"
ONE_CONFIG = [f"{TEST_FILE}::test_forward[L2-bidir-seq_first-bias-noproj-dense-h0-float32-cpu-{path}]"
              for path in ("onednn", "native")]
L1_GRID = "L1-onedir-seq_first-bias-noproj and not dropout and not T1000"


def selected(keyword: str, dtype: str, devices: tuple[str, ...] = ("cpu",)) -> list[configs.Config]:
    """The matrix's configurations that ``-k keyword`` ("ID-PART and not WORD and not ...") selects."""
    included, *excluded = keyword.split(" and not ")
    return [c for c in configs.default_matrix(devices, (dtype,))
            if included in c.id and not any(word in c.id for word in excluded)]


def count(matrix: list[configs.Config], part: str) -> tuple[int, int]:
    """How many configurations of ``matrix`` have ``part`` in their id, and how many do not."""
    having = sum(part in c.id for c in matrix)
    return having, len(matrix) - having


@pytest.fixture
def run(pytester):
    """pytest on the installed suite, candidates in-process (the worker process is tested in
    tests/test_isolation.py, and runs the suite itself in this repository's test command)."""
    pytester.syspathinsert()

    def run(*args, suite=SUITE, modules="lstm"):  # the LSTM's matrix unless asked (None: the default kinds)
        return pytester.runpytest(*suite, "--lstm-no-isolate", *(["--lstm-module", modules] if modules else []), *args)
    return run


def test_every_module_kind_runs_by_default(run):
    result = run("-k", "L1-onedir-seq_first-bias-noproj-dense-zero_state-float64-cpu-native and not split",
                 "--lstm-device", "cpu", "--lstm-dtype", "float64", modules=None)
    result.assert_outcomes(passed=len(configs.MODES))  # the forward check of each kind


def test_default_candidate_passes_and_header_names_it(run):
    result = run(*ONE_CONFIG, suite=[])
    result.assert_outcomes(passed=2)  # onednn and native torch paths
    result.stdout.fnmatch_lines([f"lstm_ref: implementation under test {DEFAULT_IMPL}"])


def test_candidate_from_the_command_line_fails_where_broken(run):
    result = run(*ONE_CONFIG, "--lstm-impl", "tests.mutants:gates_if_swapped", suite=[])
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*output: *elements out of tolerance*",
                                 "*reproduce: python -X faulthandler -c *'tests.mutants:gates_if_swapped')*"])


def test_unsupported_configurations_are_skipped_and_counted(run, pytester):
    pytester.makepyfile(partial_impl='''
        import lstm_ref
        from torch.nn.utils.rnn import PackedSequence

        def make(module):
            ref = lstm_ref.LSTM.from_torch(module)
            def forward(input, hx=None):
                if isinstance(input, PackedSequence):
                    raise NotImplementedError("no packed input")
                return ref(input, hx)
            return forward
    ''')
    result = run("-k", L1_GRID, "--lstm-dtype", "float64", "--lstm-device", "cpu",
                 "--lstm-impl", "partial_impl:make")
    packed, other = count(selected(L1_GRID, "float64"), "-packed")  # packed, packed_sorted, packed_list
    result.assert_outcomes(passed=other, skipped=packed)
    result.stdout.fnmatch_lines(["*skipped and expected-to-fail configurations of partial_impl:make*",
                                 f"{packed} unsupported by the candidate"])


def test_cuda_configurations_are_skipped_with_a_reason(run):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present: CUDA configurations run")
    keyword = "L1-onedir-seq_first-bias-noproj-dense-zero_state"
    result = run("-k", keyword, "--lstm-dtype", "float64", "-rs")
    cuda, cpu = count(selected(keyword, "float64", ("cpu", "cuda")), "-cuda-")
    result.assert_outcomes(passed=cpu, skipped=cuda)
    result.stdout.fnmatch_lines(["1 device unavailable", "*device unavailable: CUDA is not available*"])


def test_skip_file_skips_by_pattern_and_warns_about_stale_patterns(run, pytester):
    skips = pytester.makefile(".txt", skips="# known gaps\n*-packed-*\nno-such-config   # stale\n")
    result = run("-k", L1_GRID, "--lstm-dtype", "float32", "--lstm-device", "cpu",
                 "--lstm-skips", str(skips))
    packed, other = count(selected(L1_GRID, "float32"), "-packed-")
    result.assert_outcomes(passed=other, skipped=packed)
    result.stdout.fnmatch_lines(["*pattern 'no-such-config' matches no collected test*",
                                 f"{packed} listed in the skip file"])


def test_xfail_file_expects_listed_failures(run, pytester):
    xfails = pytester.makefile(".txt", xfails="# reads (T, I) as T sequences\n*-unbatched-*\n")
    result = run("-k", L1_GRID, "--lstm-dtype", "float32", "--lstm-device", "cpu",
                 "--lstm-impl", "tests.mutants:unbatched_as_batch", "--lstm-xfails", str(xfails))
    unbatched, other = count(selected(L1_GRID, "float32"), "-unbatched-")
    result.assert_outcomes(passed=other, xfailed=unbatched)
    result.stdout.fnmatch_lines([f"{unbatched} xfailed (xfail file)"])


def test_xfail_file_entry_that_passes_fails_the_run(run, pytester):
    xfails = pytester.makefile(".txt", xfails="*-unbatched-*   # fixed since\n")
    result = run("-k", L1_GRID, "--lstm-dtype", "float32", "--lstm-device", "cpu", "--lstm-xfails", str(xfails))
    unbatched, other = count(selected(L1_GRID, "float32"), "-unbatched-")
    result.assert_outcomes(passed=other, failed=unbatched)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*XPASS(strict)*listed in the xfail file*",
                                 f"{unbatched} xpassed, failing the run (xfail file)"])


@pytest.mark.parametrize(("args", "message"), [
    (["--lstm-impl", "no_such_module:make"], "*cannot import module 'no_such_module'*"),
    (["--lstm-impl", "lstm_ref:nothing"], "*module 'lstm_ref' has no attribute 'nothing'*"),
    (["--lstm-impl", "lstm_ref.LSTM"], "*must look like MODULE:ATTR*"),
    (["--lstm-impl", "lstm_ref:__version__"], "*is a str, not a callable factory*"),
    (["--lstm-device", "tpu"], "*--lstm-device: unknown*tpu*"),
    (["--lstm-skips", "/no/such/file"], "*--lstm-skips: cannot read*"),
    (["--lstm-xfails", "/no/such/file"], "*--lstm-xfails: cannot read*"),
])
def test_usage_errors(run, args, message):
    result = run("--collect-only", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_ids_read_like_the_configuration_and_k_selects_on_them(run):
    result = run("--collect-only", "-q", "--lstm-device", "cpu", "-k", "L3 and bidir and batch_first and packed and h0")
    result.stdout.fnmatch_lines(["*test_forward[[]L3-bidir-batch_first-*-packed-h0-*[]]"])
    assert "unbatched" not in result.stdout.str()
