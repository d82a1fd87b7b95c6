"""An installed wheel works on its own: built from this checkout, installed into a fresh virtual
environment, run from a folder outside the source tree, it builds the demo release to the end (the
dataset card template and every other file the build reads at run time ship inside the package)."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Run ``command`` without the caller's PYTHONPATH, so the installed wheel is what gets imported."""
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    result = subprocess.run(command, capture_output=True, text=True, env=environment, **kwargs)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A virtual environment holding this checkout's wheel (its dependencies come from the running
    environment through ``--system-site-packages``, so nothing is downloaded)."""
    tmp = tmp_path_factory.mktemp("wheel")
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp / "dist"), str(REPO)])
    wheels = sorted((tmp / "dist").glob("posedive-*.whl"))
    assert len(wheels) == 1, wheels
    environment = tmp / "venv"
    venv.EnvBuilder(system_site_packages=True, with_pip=False).create(environment)
    python = environment / "bin" / "python"
    run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", str(wheels[0])])
    return python


def test_the_wheel_holds_the_package_data(installed, tmp_path):
    script = ("import posedive, posedive.release.card as card; print(posedive.__file__); "
              "print(len(card.card_template()))")
    lines = run([str(installed), "-c", script], cwd=tmp_path).stdout.split()
    assert "site-packages" in lines[0] and not lines[0].startswith(str(REPO)), lines[0]
    assert int(lines[1]) > 0


def test_an_installed_wheel_builds_the_demo_release(installed, tmp_path):
    recipe = yaml.safe_load((REPO / "recipes" / "demo.yaml").read_text())
    recipe["source"]["root"] = str(REPO / "tests" / "fixtures" / "vtest_market")
    recipe["generator"]["weights"] = str(REPO / "models" / "demo-generator")
    recipe["images_per_pid"] = 1
    recipe["output"]["dir"] = str(tmp_path / "releases")
    (tmp_path / "demo.yaml").write_text(yaml.safe_dump(recipe))
    command = [str(installed), "-m", "posedive.cli", "build", "demo.yaml", "--no-progress"]
    run(command, cwd=tmp_path, timeout=1800)
    release = tmp_path / "releases" / recipe["name"] / recipe["version"]
    assert (release / "manifest.json").is_file()
    assert "configs:" in (release / "README.md").read_text()
