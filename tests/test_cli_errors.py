"""The command line tells user errors from bugs, and options with a fixed set of values name them.

A ``PosediveError`` prints its message and hint and exits with its own code, without a traceback; any
other exception is a bug and keeps its traceback (exit 1), a bare ``ValueError`` included.
"""

import re
import subprocess
import sys
import textwrap
from typing import get_args

import pytest
from typer.testing import CliRunner

from posedive import errors
from posedive.cli import app


def _flat(text: str) -> str:
    """The output with rich's box borders and line wrapping removed, so a message reads as one line."""
    return re.sub(r"\s+", " ", re.sub(r"[│╭╮╰╯─]", " ", text))


def _failing_load_recipe(error: BaseException):
    def load_recipe(*args, **kwargs):
        raise error

    return load_recipe


@pytest.mark.parametrize(
    "error, code",
    [
        (errors.RecipeError("recipe.yaml: seed: must be an integer", hint="write seed: 0"), 2),
        (errors.MissingDependency("pyrender is not installed", hint="pip install pyrender"), 3),
        (errors.LockError("shards 0-3 are claimed by pid 7 on host-a", hint="wait for it to finish"), 4),
    ],
)
def test_a_posedive_error_prints_message_and_hint_and_exits_with_its_code(monkeypatch, tmp_path, error, code):
    import posedive.recipe

    monkeypatch.setattr(posedive.recipe, "load_recipe", _failing_load_recipe(error))
    result = CliRunner().invoke(app, ["validate", str(tmp_path / "recipe.yaml")])
    assert result.exit_code == code == error.exit_code, result.output
    assert f"error: {error.message}" in result.output and f"hint: {error.hint}" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("error", [ValueError("index 3 out of range"), RuntimeError("unreachable state"),
                                   FileNotFoundError("/cache/internal.npz")])
def test_any_other_exception_is_a_bug_and_escapes(monkeypatch, tmp_path, error):
    import posedive.recipe

    monkeypatch.setattr(posedive.recipe, "load_recipe", _failing_load_recipe(error))
    result = CliRunner().invoke(app, ["validate", str(tmp_path / "recipe.yaml")])
    assert result.exit_code == 1
    assert result.exception is error
    assert "error:" not in result.output


def test_a_bug_shows_its_traceback_from_the_real_command_line(tmp_path):
    script = textwrap.dedent("""
        import sys
        import posedive.recipe
        def load_recipe(*args, **kwargs):
            raise ValueError("a programming bug, not a user error")
        posedive.recipe.load_recipe = load_recipe
        from posedive.cli import main
        sys.argv = ["posedive", "validate", sys.argv[1]]
        main()
    """)
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "recipe.yaml")], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert "Traceback" in done.stderr and "ValueError: a programming bug, not a user error" in done.stderr


def test_an_invalid_config_of_the_user_is_a_user_error(tmp_path):
    config = tmp_path / "train.yaml"
    config.write_text("epochs: 0\n")
    result = CliRunner().invoke(app, ["reid", "train", "--source-root", str(tmp_path), "--out", str(tmp_path / "o"),
                                      "--config", str(config)])
    assert result.exit_code == 2, result.output
    assert "epochs" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("content, message", [(None, "not found"), ("- epochs\n", "expected a mapping"),
                                              ("epochs: [1\n", "not valid YAML")])
def test_a_reid_config_that_cannot_be_read_names_the_file(tmp_path, content, message):
    config = tmp_path / "train.yaml"
    if content is not None:
        config.write_text(content)
    result = CliRunner().invoke(app, ["reid", "train", "--source-root", str(tmp_path), "--out", str(tmp_path / "o"),
                                      "--config", str(config)])
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert "train.yaml" in _flat(result.output) and message in _flat(result.output)


# (command line before the option, option, its values, a value it refuses)
CHOICE_OPTIONS = [
    (["splits", "SOURCE", "--by", "pose"], "--by", ("viewpoint", "pose"), "angle"),
    (["splits", "SOURCE", "--by", "pose"], "--regions", ("camera+orientation", "camera", "orientation"), "sky"),
    (["splits", "SOURCE", "--by", "pose"], "--orientation", ("fit", "landmarks"), "smpl"),
    (["stats", "SOURCE"], "--split", ("train", "query", "gallery", "all"), "val"),
    (["stats", "SOURCE"], "--orientation", ("fit", "landmarks"), "smpl"),
    (["export", "RELEASE", "--source-root", "S", "--out", "O"], "--format", ("market1501",), "duke"),
    (["build", "RECIPE"], "--engine", ("local", "ray"), "spark"),
    (["fit", "IMAGES", "--out", "O"], "--body", ("anny", "smpl"), "star"),
    (["pairs", "VIDEO", "--out", "O"], "--body", ("anny", "smpl"), "star"),
]


@pytest.mark.parametrize("before, flag, values, wrong", CHOICE_OPTIONS, ids=[f"{c[0][0]}{c[1]}" for c in CHOICE_OPTIONS])
def test_options_with_fixed_values_list_them_and_refuse_others(tmp_path, before, flag, values, wrong):
    runner = CliRunner()
    shown = _flat(runner.invoke(app, [before[0], "--help"], env={"COLUMNS": "200"}).output)
    assert re.search(re.escape(flag) + r"\s+(-\w\s+)?\[" + re.escape("|".join(values)) + r"\]", shown), shown
    args = [str(tmp_path / arg) if arg.isupper() else arg for arg in before]
    refused = runner.invoke(app, [*args, flag, wrong], env={"COLUMNS": "200"})
    assert refused.exit_code == 2, refused.output
    spoken = values[0] if len(values) == 1 else f"{', '.join(values[:-1])} or {values[-1]}"
    assert f"{flag} must be {spoken}, got {wrong!r}" in _flat(refused.output)


@pytest.mark.parametrize("command", [["fit", "IMAGES"], ["pairs", "VIDEO"]])
def test_an_smpl_body_without_its_folder_is_refused_in_the_options_words(tmp_path, command):
    (tmp_path / "IMAGES").mkdir()
    (tmp_path / "VIDEO").write_bytes(b"")
    result = CliRunner().invoke(app, [command[0], str(tmp_path / command[1]), "--out", str(tmp_path / "out"),
                                      "--body", "smpl"], env={"COLUMNS": "200"})
    assert result.exit_code == 2, result.output
    assert "--body smpl needs --smpl-model-dir" in result.output and "hint:" in result.output
    assert not (tmp_path / "out").exists()


def test_split_choices_are_the_values_of_the_split_report():
    from posedive.analysis.inputs import SplitChoice as SourceSplit
    from posedive.commands.splits import OrientationChoice, RegionChoice, SplitByChoice
    from posedive.commands.stats import SplitChoice
    from posedive.release.split_folder import OrientationKind, RegionKind, SplitBy

    for choices, literal in ((SplitByChoice, SplitBy), (RegionChoice, RegionKind), (OrientationChoice, OrientationKind),
                             (SplitChoice, SourceSplit)):
        assert [member.value for member in choices] == list(get_args(literal))


def test_readme_names_every_exit_code_of_a_user_error():
    import inspect
    from pathlib import Path

    codes = {cls.exit_code for _, cls in inspect.getmembers(errors, inspect.isclass) if issubclass(cls, errors.PosediveError)}
    readme = _flat((Path(__file__).resolve().parents[1] / "README.md").read_text())
    sentence = re.search(r"exits with (.*?)\. An exit status of 1 with a traceback is a bug", readme)
    assert sentence is not None
    assert {int(code) for code in re.findall(r"\b(\d)\b \(", sentence.group(1))} == codes
    assert 1 not in codes
