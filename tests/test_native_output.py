"""Native chatter on fd 2 is dropped line by line; everything else written there still shows."""

import io
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from posedive import native_output
from posedive.native_output import QUIET_VARIABLE, filtered_native_output

REPO = Path(__file__).resolve().parents[1]
CHATTER = (
    b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n"
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
    b"W0000 00:00:1796297671.574941   17747 inference_feedback_manager.cc:114] Feedback manager requires a "
    b"model with a single signature inference. Disabling support for feedback tensors.\n"
    b"I0000 00:00:1796297671.6   17747 gl_context.cc:357] GL version: 3.2\n"
    b"Warp CUDA warning: Could not find or load the NVIDIA CUDA driver. GPU execution will not be available.\n"
)
REAL = (
    b"E0000 00:00:1796297671.7   17747 graph.cc:12] Calculator::Open() failed\n"
    b"W0000 00:00:1796297671.8   17747 other.cc:9] a warning nobody has classed as chatter\n"
    b"Segmentation fault in a native library\n"
)


@pytest.fixture
def quiet(monkeypatch):
    monkeypatch.setenv(QUIET_VARIABLE, "1")


def test_known_chatter_is_dropped_and_everything_else_written_back(quiet, capfd):
    with filtered_native_output():
        os.write(2, CHATTER[:60])  # a line written in pieces is still one line
        os.write(2, CHATTER[60:] + REAL)
    err = capfd.readouterr().err.encode()
    assert err == REAL


def test_nothing_is_filtered_unless_libraries_are_quiet(monkeypatch, capfd):
    monkeypatch.delenv(QUIET_VARIABLE, raising=False)
    with filtered_native_output():
        os.write(2, CHATTER + REAL)
    assert capfd.readouterr().err.encode() == CHATTER + REAL


def test_a_failing_call_still_gets_fd_2_back(quiet, capfd):
    with pytest.raises(RuntimeError), filtered_native_output():
        os.write(2, CHATTER + b"the native error before the exception\n")
        raise RuntimeError("graph failed")
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "the native error before the exception\nafter\n"


def test_a_host_that_replaced_sys_stderr_is_fine(quiet, capfd, monkeypatch):
    """pytest's and notebooks' ``sys.stderr`` has no file descriptor: only fd 2 is touched."""
    replaced = io.StringIO()
    monkeypatch.setattr(sys, "stderr", replaced)
    with filtered_native_output():
        os.write(2, CHATTER + REAL)
        print("python's own line", file=sys.stderr)
    assert capfd.readouterr().err.encode() == REAL
    assert replaced.getvalue() == "python's own line\n"


def test_calls_overlapping_in_threads_share_one_redirection(quiet, capfd):
    inside = threading.Barrier(2)

    def chatter(name: bytes) -> None:
        with filtered_native_output():
            inside.wait()
            os.write(2, CHATTER + name + b" kept\n")
            inside.wait()

    threads = [threading.Thread(target=chatter, args=(name,)) for name in (b"first", b"second")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    os.write(2, b"after\n")
    err = capfd.readouterr().err
    assert sorted(err.splitlines()) == ["after", "first kept", "second kept"] and err.endswith("after\n")
    assert native_output._depth == 0 and native_output._redirect is None


def test_a_process_without_fd_2_runs_unfiltered():
    code = ("import os; os.close(2)\n"
            "from posedive.native_output import filtered_native_output\n"
            "with filtered_native_output():\n    pass\n"
            "print('ran')\n")
    result = subprocess.run([sys.executable, "-c", code], env={**os.environ, QUIET_VARIABLE: "1", "PYTHONPATH": str(REPO)},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout == "ran\n"


def crop() -> np.ndarray:
    path = sorted((REPO / "tests" / "fixtures" / "vtest_market" / "bounding_box_train").glob("*.jpg"))[0]
    return np.asarray(Image.open(path).convert("RGB"))


def test_mediapipes_chatter_is_filtered_and_shows_when_not_quiet(monkeypatch, capfd):
    from posedive.pose.blazepose import BlazePoseEstimator

    monkeypatch.setenv(QUIET_VARIABLE, "1")
    with BlazePoseEstimator() as estimator:
        assert estimator.estimate([crop()])[0].person_found
    quiet_err = capfd.readouterr().err
    monkeypatch.delenv(QUIET_VARIABLE)
    with BlazePoseEstimator() as estimator:
        estimator.estimate([crop()])
    loud_err = capfd.readouterr().err
    assert "inference_feedback_manager" in loud_err  # the chatter is real, once per graph
    assert not any(native_output.is_chatter(line.encode()) for line in quiet_err.splitlines()), quiet_err
    assert "inference_feedback_manager" not in quiet_err


def test_warp_keeps_its_info_lines_for_verbose(quiet):
    warp = pytest.importorskip("warp")
    before = warp.config.log_level
    try:
        native_output.quiet_warp()
        assert warp.config.log_level >= warp.LOG_WARNING
    finally:
        warp.config.log_level = before


def test_diffusers_loading_bar_is_hidden_only_while_the_generator_loads(quiet):
    from diffusers.utils import logging as diffusers_logging

    from posedive.generation.generator import _loading_bar_hidden

    assert diffusers_logging.is_progress_bar_enabled()
    with _loading_bar_hidden():
        assert not diffusers_logging.is_progress_bar_enabled()
    assert diffusers_logging.is_progress_bar_enabled()
