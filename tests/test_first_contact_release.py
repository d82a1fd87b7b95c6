"""What a new user meets first: dry-runs that print the plan, cards that name the generator by what
identifies it and whose webdataset snippet runs cleanly, resolved paths, and validate's errors first."""

import re
import subprocess
import sys

import pytest
import yaml
from doubles import DoubleRenderer, double_stages
from frame_helpers import frame_recipe
from typer.testing import CliRunner

from posedive import paths
from posedive.builder import build_release
from posedive.cli import app
from posedive.recipe import load_recipe


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("finished")
    recipe = frame_recipe(tmp_path)
    report = build_release(recipe, stages=double_stages(), show_progress=False)
    recipe_file = tmp_path / "recipe.yaml"
    recipe_file.write_text(yaml.safe_dump(recipe.model_dump(mode="json")))
    return recipe, report, recipe_file


def test_a_dry_run_of_a_finished_release_prints_its_plan(finished, monkeypatch):
    from posedive.builder import runner
    from posedive.commands import _common

    recipe, report, recipe_file = finished
    monkeypatch.setattr(runner, "load_conditions", lambda recipe: DoubleRenderer())
    monkeypatch.setattr(_common.console, "width", 250)  # table cells unwrapped
    result = CliRunner().invoke(app, ["build", str(recipe_file), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert f"plan of {recipe.name} {recipe.version}" in result.output and "first work units" in result.output
    assert report.plan.units[0].key in result.output
    assert "already complete" in result.output


def card_with_generator(finished, tmp_path, weights: str, revision: str | None = None) -> str:
    from posedive.release.card import render_card

    recipe, report, _ = finished
    (tmp_path / "models" / "my-generator").mkdir(parents=True)
    named = frame_recipe(tmp_path / "recipes", generator={"weights": weights, "revision": revision})
    manifest = report.manifest.model_copy(update={"generator": report.manifest.generator.model_copy(
        update={"id": weights, "revision": revision})})
    return render_card(named, manifest, [])


def test_the_card_names_a_local_generator_by_its_folder_and_sha256(finished, tmp_path):
    card = card_with_generator(finished, tmp_path, "../models/my-generator")
    sha256 = finished[1].manifest.generator.sha256
    assert f"The local folder `my-generator`\n(weights sha256 `{sha256}`)" in card
    assert "../models" not in card


def test_the_card_names_a_hub_generator_by_its_id_and_revision(finished, tmp_path):
    card = card_with_generator(finished, tmp_path, "my-lab/pose-generator", revision="0123abc")
    assert "`my-lab/pose-generator` at revision `0123abc`" in card


def test_the_cards_webdataset_snippet_runs_without_a_warning(finished):
    recipe, report, _ = finished
    card = (recipe.release_dir / paths.CARD).read_text()
    snippet = next(block for block in re.findall(r"```python\n(.*?)```", card, re.S) if "import webdataset" in block)
    snippet += "print(sum(1 for _ in ds))\n"
    # webdataset's own unclosed tar streams at exit are ResourceWarnings, which Python hides by default
    result = subprocess.run([sys.executable, "-W", "error", "-W", "ignore::ResourceWarning", "-c", snippet],
                            cwd=recipe.release_dir, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stderr == "", result.stderr[-3000:]
    assert int(result.stdout.split()[-1]) == report.manifest.samples


def test_paths_are_printed_resolved(tmp_path):
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    (tmp_path / "market").mkdir()
    recipe_file = recipes / "r.yaml"
    recipe_file.write_text(yaml.safe_dump({
        "name": "resolved", "version": "1.0.0", "source": {"format": "market1501", "root": "../market"},
        "generator": {"weights": "org/generator"}, "output": {"dir": "../releases"},
    }))
    recipe = load_recipe(recipe_file)
    assert recipe.release_dir == tmp_path.resolve() / "releases" / "resolved" / "1.0.0"
    assert recipe.resolve(recipe.source.root) == (tmp_path / "market").resolve()
    result = CliRunner().invoke(app, ["validate", str(recipe_file)])
    assert f"release folder: {recipe.release_dir}\n" in result.output
    assert "/../" not in result.output


def test_validate_prints_the_errors_first_and_the_resolved_recipe_on_request(tmp_path):
    recipe_file = tmp_path / "r.yaml"
    recipe_file.write_text(yaml.safe_dump({
        "name": "broken", "version": "1.0.0", "source": {"format": "market1501", "root": "missing"},
        "generator": {"weights": "org/generator"},
    }))
    result = CliRunner().invoke(app, ["validate", str(recipe_file)])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines[0].startswith("error:") and "source.root" in lines[0]
    assert '"name": "broken"' not in result.output and "--show" in result.output
    shown = CliRunner().invoke(app, ["validate", str(recipe_file), "--show"])
    assert shown.exit_code == 2
    assert shown.output.index("source.root") < shown.output.index('"name": "broken"')
    assert "recipe hash:" in shown.output


def test_the_cards_coverage_says_what_it_counts_and_why_reports_differ(finished):
    recipe, report, _ = finished
    card = (report.release_dir / paths.CARD).read_text()
    manifest = report.manifest
    assert (f"Viewpoint coverage of the {manifest.samples} accepted samples" in card
            and f"{manifest.viewpoint_entropy:.3f}" in card)
    assert "`posedive report` gives\nthe same measure for the planned conditions" in card
