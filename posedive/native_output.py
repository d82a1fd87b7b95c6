"""Other libraries' native chatter, filtered where it is written: the process's file descriptor 2.

MediaPipe's TF-Lite and glog code and NVIDIA Warp's driver probe write from C and C++ straight to
fd 2, below Python's ``sys.stderr``, ``logging`` and ``warnings``; glog and TF-Lite read no level a
Python program can still set once they are loaded. So around the few calls known to chatter (creating
a MediaPipe graph and its first inferences, initialising Warp) fd 2 points at a temporary file, and
when the last such call ends it is restored and every line that is *not* known chatter is written back
to it: a real native warning or error still shows, only later by the length of the call. Whatever
Python or other threads wrote to fd 2 meanwhile is written back too, in its order.

Filtering is on when ``POSEDIVE_QUIET_LIBRARIES=1``: the command line sets it unless ``--verbose``,
and worker processes (local or Ray) inherit it with the rest of the environment. It only ever touches
fd 2 itself, never ``sys.stderr``, so a host that replaced ``sys.stderr`` (pytest, a notebook) or a
process without fd 2 is fine.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import threading
from contextlib import contextmanager
from typing import IO, Iterator

QUIET_VARIABLE = "POSEDIVE_QUIET_LIBRARIES"

# Lines that say nothing a user acts on; anything else (a glog E/F line, an unknown W line, a
# traceback) is written back. glog lines look like ``W0000 00:00:1796.57   17747 file.cc:114] text``.
_GLOG = rb"[IWEF]\d{4} [\d:.]+ +\d+ "
KNOWN_CHATTER: tuple[re.Pattern[bytes], ...] = tuple(re.compile(pattern) for pattern in (
    rb"^INFO: ",  # TF-Lite's own INFO lines ("Created TensorFlow Lite XNNPACK delegate for CPU.")
    rb"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR",
    rb"^I\d{4} [\d:.]+ +\d+ ",  # any glog INFO line (MediaPipe's GL context, calculator set-up)
    _GLOG + rb"inference_feedback_manager\.cc:\d+\] Feedback manager requires a model with a single signature",
    _GLOG + rb"landmark_projection_calculator\.cc:\d+\] Using NORM_RECT without IMAGE_DIMENSIONS",
    # posedive runs Warp (inside anny) on the CPU when there is no GPU: nothing to act on
    rb"^Warp CUDA warning: Could not find or load the NVIDIA CUDA driver",
))

_lock = threading.Lock()
_depth = 0  # filtered calls running now, in any thread: fd 2 is restored when the last one ends
_redirect: "_Redirect | None" = None


def libraries_are_quiet() -> bool:
    """Whether other libraries' chatter is to be silenced in this process (``POSEDIVE_QUIET_LIBRARIES=1``)."""
    return os.environ.get(QUIET_VARIABLE, "") == "1"


def is_chatter(line: bytes) -> bool:
    text = line.lstrip(b"\r")
    return any(pattern.match(text) for pattern in KNOWN_CHATTER)


def without_chatter(data: bytes) -> bytes:
    """``data`` with every known-chatter line removed, everything else byte for byte."""
    return b"".join(line for line in data.splitlines(keepends=True) if not is_chatter(line))


class _Redirect:
    """fd 2 pointed at a temporary file; ``restore`` points it back and writes the kept lines to it."""

    def __init__(self, saved_fd: int, capture: IO[bytes]) -> None:
        self.saved_fd = saved_fd
        self.capture = capture

    @classmethod
    def start(cls) -> "_Redirect | None":
        _flush_python_streams()
        try:
            saved_fd = os.dup(2)
        except OSError:  # no fd 2 at all: nothing can be written there, nothing to filter
            return None
        try:
            capture = tempfile.TemporaryFile()
            os.dup2(capture.fileno(), 2)
        except OSError:
            os.close(saved_fd)
            return None
        return cls(saved_fd, capture)

    def restore(self) -> None:
        _flush_python_streams()
        os.dup2(self.saved_fd, 2)
        os.close(self.saved_fd)
        with self.capture:
            self.capture.seek(0)
            kept = without_chatter(self.capture.read())
        _write_all(2, kept)


@contextmanager
def filtered_native_output() -> Iterator[None]:
    """Run the body with fd 2's known chatter dropped (when ``libraries_are_quiet()``); calls may
    nest and overlap across threads."""
    if not libraries_are_quiet():
        yield
        return
    global _depth, _redirect
    with _lock:
        if _depth == 0:
            _redirect = _Redirect.start()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _redirect is not None:
                redirect, _redirect = _redirect, None
                redirect.restore()


def quiet_warp() -> None:
    """Keep Warp's INFO lines (its banner, one line per kernel module loaded) for ``--verbose``; call
    before Warp initialises (anny initialises it as it loads). Its warnings and errors still show."""
    if not libraries_are_quiet():
        return
    try:
        import warp
    except ImportError:  # anny then skins without Warp
        return
    if hasattr(warp.config, "log_level"):  # Warp >= 1.12
        warp.config.log_level = max(warp.config.log_level, warp.LOG_WARNING)
    else:
        warp.config.quiet = True


def _flush_python_streams() -> None:
    # text Python buffered before (or during) the redirection goes where it belongs, in order
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, ValueError, OSError):  # None, closed, or a stand-in without flush
            pass


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except OSError:  # fd 2 went away meanwhile: nobody can read it
            return
        view = view[written:]
