"""The Ray engine's options and its missing-extra error; these need no Ray installed."""

import sys

import pytest

from posedive.parallel import RayUnavailable, require_ray


def test_missing_ray_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(RayUnavailable, match=r"pip install 'posedive\[ray\]'"):
        require_ray()


def test_cli_checks_engine_options(tmp_path):
    from typer.testing import CliRunner

    from posedive.cli import app

    for extra, message in ((["--engine", "spark"], "--engine must be local or ray"),
                           (["--address", "auto"], "--address is for --engine ray")):
        result = CliRunner().invoke(app, ["build", str(tmp_path / "recipe.yaml"), *extra])
        assert result.exit_code == 2 and message in result.output, result.output
