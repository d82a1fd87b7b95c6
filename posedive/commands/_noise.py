"""What the command line shows of other libraries' logs: their warnings and errors, not their chatter.

TF-Lite and MediaPipe (through absl and glog) announce their delegates, JAX that it found no CUDA
driver, PyOpenGL that ``OpenGL_accelerate`` is missing, diffusers and transformers draw their own
progress bars, NVIDIA Warp (inside anny) prints a banner, ``datasets`` and anny log at INFO: lines that
break up posedive's progress bar and say nothing a user acts on. By default they are silenced (the
native libraries read their variables as they load, so this runs before any command imports them);
what native code writes to fd 2 regardless is filtered line by line by ``posedive.native_output``,
which this turns on for this process and the workers it starts. ``posedive --verbose`` shows everything.
"""

from __future__ import annotations

import logging
import os

from ..native_output import QUIET_VARIABLE

# Read by the native loggers as their libraries load: 2 keeps warnings' successors (errors) only.
NATIVE_LOG_VARIABLES = {"TF_CPP_MIN_LOG_LEVEL": "2", "GLOG_minloglevel": "2"}
# Read by posedive itself (``posedive.native_output``), here and in every worker process, which inherits it.
QUIET_LIBRARY_VARIABLES = {QUIET_VARIABLE: "1"}
# Python loggers whose INFO lines are noise; their warnings still show.
CHATTY_LOGGERS = ("absl", "jax", "OpenGL", "OpenGL.acceleratesupport", "diffusers",
                  "transformers", "huggingface_hub", "accelerate", "urllib3", "filelock", "matplotlib", "PIL",
                  "datasets", "anny")
# JAX warns on every start of a machine with a GPU but CPU-only jaxlib (MediaPipe only needs the CPU).
SILENT_LOGGERS = ("jax._src.xla_bridge",)
PROGRESS_BAR_VARIABLES = {"HF_HUB_DISABLE_PROGRESS_BARS": "1", "DIFFUSERS_VERBOSITY": "error",
                          "TRANSFORMERS_VERBOSITY": "error"}


def configure_logging(verbose: bool) -> None:
    """posedive's own messages at INFO (DEBUG with ``verbose``); other libraries' quiet unless ``verbose``."""
    level = logging.DEBUG if verbose else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger().setLevel(level)  # also when a host (a test runner, a notebook) configured logging first
    if verbose:
        return
    for name, value in {**NATIVE_LOG_VARIABLES, **QUIET_LIBRARY_VARIABLES, **PROGRESS_BAR_VARIABLES}.items():
        os.environ.setdefault(name, value)  # a value the user set wins
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in SILENT_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
