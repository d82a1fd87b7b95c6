"""Without the system EGL libraries rendering fails with one clear error naming the packages to install,
and the tests skip only for that: a broken import of a required package fails them."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from pose_images import skip_without_system_libraries

from posedive.errors import MissingDependency

# Make ctypes unable to find or open libEGL, as on a machine without libegl1, before OpenGL loads.
HIDE_EGL = textwrap.dedent("""
    import ctypes, ctypes.util
    _find, _init = ctypes.util.find_library, ctypes.CDLL.__init__
    ctypes.util.find_library = lambda name: None if "EGL" in name else _find(name)
    def _no_egl(self, name, *args, **kwargs):
        if name and "EGL" in str(name):
            raise OSError(f"{name}: cannot open shared object file: No such file or directory")
        _init(self, name, *args, **kwargs)
    ctypes.CDLL.__init__ = _no_egl
""")


def test_missing_egl_names_the_packages_to_install():
    script = HIDE_EGL + textwrap.dedent("""
        from posedive.conditions.render import MeshRasterizer
        from posedive.errors import MissingDependency
        try:
            MeshRasterizer(32, 64)
        except MissingDependency as error:
            print("MISSING", error.hint)
        else:
            print("RENDERED")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "MISSING" in result.stdout, result.stdout + result.stderr[-2000:]
    for package in ("libegl1", "libegl-mesa0", "libgl1-mesa-dri"):
        assert package in result.stdout


def test_fixtures_skip_only_for_missing_system_libraries():
    def no_egl():
        raise MissingDependency("headless rendering is not available", hint="apt-get install libegl1")

    def broken_install():
        raise ImportError("cannot import name 'Scene' from 'pyrender'")

    with pytest.raises(pytest.skip.Exception, match="libegl1"):
        skip_without_system_libraries(no_egl)
    with pytest.raises(ImportError, match="Scene"):
        skip_without_system_libraries(broken_install)
    assert skip_without_system_libraries(lambda value: value * 2, 21) == 42
