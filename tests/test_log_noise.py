"""Other libraries' chatter is silenced by default and shown with ``--verbose``."""

import logging
import os

import pytest
from typer.testing import CliRunner

from posedive.cli import app
from posedive.commands import _noise

RECIPE = "recipes/demo.yaml"


@pytest.fixture
def clean_logging(monkeypatch):
    for name in {**_noise.NATIVE_LOG_VARIABLES, **_noise.QUIET_LIBRARY_VARIABLES, **_noise.PROGRESS_BAR_VARIABLES}:
        monkeypatch.delenv(name, raising=False)
    loggers = [logging.getLogger(name) for name in (*_noise.CHATTY_LOGGERS, *_noise.SILENT_LOGGERS)]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.NOTSET)
    yield
    for logger, level in zip(loggers, levels):
        logger.setLevel(level)


def _log_lines(*args: str) -> str:
    """What a command logs of other libraries' chatter, as they would log it once loaded."""
    root = logging.getLogger()
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    root.addHandler(handler)
    try:
        result = CliRunner().invoke(app, [*args, "validate", RECIPE])
        assert result.exit_code == 0, result.output
        logging.getLogger("OpenGL.acceleratesupport").info("No OpenGL_accelerate module loaded")
        logging.getLogger("absl").info("Created TensorFlow Lite XNNPACK delegate for CPU")
        logging.getLogger("jax._src.xla_bridge").warning("An NVIDIA GPU may be present on this machine, but a "
                                                         "CUDA-enabled jaxlib is not installed")
        logging.getLogger("posedive.builder").info("shard 0 built")
    finally:
        root.removeHandler(handler)
    return "\n".join(record.getMessage() for record in records)


def test_third_party_noise_is_silenced_by_default(clean_logging):
    lines = _log_lines()
    assert "shard 0 built" in lines
    assert "OpenGL_accelerate" not in lines and "TensorFlow Lite" not in lines and "jaxlib" not in lines
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "2" and os.environ["GLOG_minloglevel"] == "2"
    assert os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1"


def test_verbose_shows_it(clean_logging):
    lines = _log_lines("--verbose")
    assert "OpenGL_accelerate" in lines and "TensorFlow Lite" in lines and "jaxlib" in lines
    assert "TF_CPP_MIN_LOG_LEVEL" not in os.environ
