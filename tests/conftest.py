"""pytest hooks, the one autouse fixture and the session's shared README run; the helpers the tests share are
tests/helpers.py."""

from __future__ import annotations

import os

import pytest
import threadpoolctl
import torch


def pytest_report_header(config: pytest.Config) -> str:
    """The ISA this run's kernels use (an imposed ONEDNN_MAX_CPU_ISA, else the CPU's newest) and the OpenVINO
    default precision: every bound on what oneDNN computes is only as good as the ISAs it was run under."""
    from compress.isa import probe_kernel
    from compress.runtime import cpu_isa, default_precision, imposed_isa, own_isa

    how = "imposed by ONEDNN_MAX_CPU_ISA" if imposed_isa() else "native"
    return (f"ISA: {own_isa()} ({how}); a convolution runs {probe_kernel()}; OpenVINO default precision: "
            f"{default_precision()}; CPU flags: {cpu_isa()}")


# The files in the order pytest-xdist hands them to the workers (the README's command runs each file on one worker,
# --dist loadfile, in collection order: --no-loadscope-reorder in pyproject.toml), longest first, so that no long
# file starts last while the other worker idles. Their times: `--durations` in any run's log; the rest keep their
# order after these. tests/shared_runs.py's README run is test_library's and test_quantize's: the first starts it.
FIRST = ("test_qat_targets.py", "test_library.py", "test_outputs.py", "test_prune.py", "test_benchmark.py",
         "test_qat.py", "test_reshape.py", "test_early_exit.py", "test_deploy.py", "test_quantize.py",
         "test_bad_input.py", "test_ir.py", "test_install.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(FIRST)))  # stable: the rest keep their order


def pytest_configure(config: pytest.Config) -> None:
    import compress

    compress.prepare_process()  # as every command does first (the tests call the jobs as a library)
    # Under pytest-xdist (the README's test command) each worker gets its share of the cores for torch, in this
    # process and in the commands it starts: torch's OpenMP threads spin while they wait, so two workers of two
    # threads each on two cores slow torch-bound tests several-fold. OpenVINO's pool is left as it is: held to
    # one core, the plugin's compilations of one IR vary in executed nodes, which the node-count checks would see
    # (docs/results/suite.md).
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    if workers > 1:
        share = max(1, (os.cpu_count() or 1) // workers)
        os.environ.setdefault("OMP_NUM_THREADS", str(share))
        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
        # NumPy's BLAS (OpenBLAS) was sized at import, before this hook, and its threads spin too
        os.environ.setdefault("OPENBLAS_NUM_THREADS", os.environ["OMP_NUM_THREADS"])
        threadpoolctl.threadpool_limits(int(os.environ["OPENBLAS_NUM_THREADS"]), user_api="blas")


@pytest.fixture(scope="session")
def readme_example(tmp_path_factory: pytest.TempPathFactory):
    """The README's library example, run once a session across workers (tests/shared_runs.py)."""
    from tests.shared_runs import readme_run

    return readme_run(tmp_path_factory)


@pytest.fixture(scope="session")
def quick_run(tmp_path_factory):
    """The quickest INT8 run's output folder, made once a session across workers (tests/shared_runs.py)."""
    from tests.shared_runs import quick_run

    return quick_run(tmp_path_factory)


@pytest.fixture(autouse=True)
def _torch_determinism():
    torch.manual_seed(0)
    yield


