"""Publishing releases to a local Hub-compatible server with the unmodified huggingface_hub and datasets.

Releases are built by the real builder (with the test doubles of ``doubles.py``). Pushes and loads run
in subprocesses so that ``HF_ENDPOINT`` and ``HF_HUB_DISABLE_XET`` are set before the clients are
imported, exactly as a user would set them.
"""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from doubles import double_stages
from frame_helpers import frame_recipe
from hub_server import HubServer, client_env

from posedive import paths
from posedive.builder import build_release
from posedive.hub import HUB_RECORD, TagConflictError, push_release, read_hub_record
from posedive.release import Release

REPO_ROOT = Path(__file__).resolve().parents[1]
TOKEN = "hf_posedive_test_token_5e1f0c"
USER = "posedive-lab"
REPO = f"{USER}/market1501-posedive"


@pytest.fixture(scope="module")
def hub():
    server = HubServer(tokens={TOKEN: USER}).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def releases(tmp_path_factory):
    """Three finished releases: v1.0.0, v1.1.0 (other samples, fewer shards) and a different v1.0.0."""
    root = tmp_path_factory.mktemp("releases")
    built = {}
    for label, version, seed, per_shard in (("v1.0.0", "1.0.0", 0, 4), ("v1.1.0", "1.1.0", 1, 8),
                                            ("other-v1.0.0", "1.0.0", 7, 4)):
        recipe = frame_recipe(root / label, name="market1501-posedive", version=version, seed=seed,
                              output={"samples_per_shard": per_shard})
        build_release(recipe, stages=double_stages(), show_progress=False)
        built[label] = Release.open(recipe.release_dir)
    return built


HUB_REPO = f"{USER}/market1501-posedive-from-recipe"


@pytest.fixture(scope="module")
def hub_repo_release(tmp_path_factory):
    """A finished release whose recipe sets output.hub_repo."""
    root = tmp_path_factory.mktemp("hub-repo-release")
    recipe = frame_recipe(root, name="market1501-posedive", version="1.0.0", seed=3,
                          output={"samples_per_shard": 8, "hub_repo": HUB_REPO})
    build_release(recipe, stages=double_stages(), show_progress=False)
    return Release.open(recipe.release_dir)


def _env(hub: HubServer, home: Path, token: str | None = TOKEN) -> dict[str, str]:
    return client_env(hub.url, home, token, extra_paths=(str(REPO_ROOT),))


def _run(args: list[str], env: dict[str, str], timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], env=env, cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=timeout)


def _cli_push(release: Release, repo: str, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess:
    return _run(["-m", "posedive.cli", "push", str(release.root), "--repo", repo, *extra], env)


def _tags(hub: HubServer, repo: str) -> dict[str, str]:
    return dict(hub.state.repo("dataset", repo).tags)


@pytest.fixture(scope="module")
def published(hub, releases, tmp_path_factory):
    """v1.0.0 pushed with the CLI, then v1.1.0 with hub_upload.py, into one private repo."""
    home = tmp_path_factory.mktemp("push-home")
    env = _env(hub, home)
    first = _cli_push(releases["v1.0.0"], REPO, env)
    assert first.returncode == 0, first.stderr
    second = _run(["hub_upload.py", str(releases["v1.1.0"].root), "--repo", REPO], env)
    assert second.returncode == 0, second.stderr
    return {"v1.0.0": first, "v1.1.0": second}


def test_push_creates_a_private_repo_tags_and_records_each_version(hub, releases, published):
    repo = hub.state.repo("dataset", REPO)
    assert repo is not None and repo.private
    tags = _tags(hub, REPO)
    assert set(tags) == {"v1.0.0", "v1.1.0"}
    assert tags["v1.1.0"] == repo.branches["main"]
    for label in ("v1.0.0", "v1.1.0"):
        release = releases[label]
        sha = published[label].stdout.strip().splitlines()[-1]
        assert sha == tags[label]
        record = read_hub_record(release.root)
        assert record is not None and len(record.pushes) == 1
        push = record.pushes[0]
        assert (push.repo_id, push.tag, push.commit_sha, push.private) == (REPO, label, sha, True)
        assert push.endpoint == hub.url and push.files == len(release.files())
        # the tag holds exactly the release's files with the manifest's hashes (plus the Hub's .gitattributes)
        tree = hub.tree(REPO, label)
        assert set(tree) - {".gitattributes"} == set(release.files())
        for relpath, entry in release.files().items():
            assert hashlib.sha256(hub.read(REPO, label, relpath)).hexdigest() == entry.sha256
        assert all(tree[s.path].lfs_sha256 == s.sha256 for s in release.manifest.shards)
        # the token is never written into the release, the Hub repo, or the output
        assert TOKEN not in published[label].stdout + published[label].stderr
        for path in release.root.rglob("*"):
            if path.is_file():
                assert TOKEN.encode() not in path.read_bytes(), path
        assert all(TOKEN.encode() not in hub.read(REPO, label, rel) for rel in tree)
    # v1.1.0 has fewer shards: the older shards are gone from main, so the data glob sees only v1.1.0
    v1, v11 = releases["v1.0.0"].manifest.shards, releases["v1.1.0"].manifest.shards
    assert len(v11) < len(v1)
    main_data = sorted(p for p in hub.tree(REPO, "main") if p.startswith("data/"))
    assert main_data == [s.path for s in v11]


def test_private_repo_is_invisible_without_a_token(hub, published, tmp_path):
    script = textwrap.dedent(f"""
        from huggingface_hub import HfApi
        from huggingface_hub.errors import RepositoryNotFoundError
        try:
            HfApi(token=False).dataset_info({REPO!r})
        except RepositoryNotFoundError:
            print("hidden")
        print(HfApi().dataset_info({REPO!r}).private)
    """)
    result = _run(["-c", script], _env(hub, tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["hidden", "True"]


def _decoded_md5(image) -> str:
    return hashlib.md5(np.asarray(image.convert("RGB")).tobytes()).hexdigest()


def _assert_provenance_equal(loaded, expected, where: str) -> None:
    """Provenance arrives as a typed column (floats declared float32): compare up to float32 precision."""
    if isinstance(expected, dict):
        assert isinstance(loaded, dict) and set(loaded) == set(expected), where
        for key in expected:
            _assert_provenance_equal(loaded[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(loaded, list) and len(loaded) == len(expected), where
        for index, (a, b) in enumerate(zip(loaded, expected)):
            _assert_provenance_equal(a, b, f"{where}[{index}]")
    elif isinstance(expected, float) and not isinstance(expected, bool):
        assert math.isclose(loaded, float(np.float32(expected)), rel_tol=1e-6, abs_tol=1e-6), where
    else:
        assert loaded == expected, where


LOAD_SCRIPT = textwrap.dedent("""
    import hashlib, json, sys
    import numpy as np
    from datasets import load_dataset

    repo, revision, image_field = sys.argv[1], sys.argv[2], sys.argv[3]
    out = {}
    for streaming in (False, True):
        dataset = load_dataset(repo, revision=revision, split="train", streaming=streaming)
        rows = []
        for row in dataset:
            rows.append({
                "key": row["__key__"],
                "columns": sorted(row),
                "image": hashlib.md5(np.asarray(row[image_field].convert("RGB")).tobytes()).hexdigest(),
                "depth": hashlib.md5(np.asarray(row["depth.png"].convert("RGB")).tobytes()).hexdigest(),
                "json": row["json"],
            })
        out["streaming" if streaming else "downloaded"] = rows
    print(json.dumps(out))
""")


@pytest.mark.parametrize("label", ["v1.0.0", "v1.1.0"])
def test_load_dataset_at_a_version_tag_returns_exactly_that_release(hub, releases, published, label, tmp_path):
    release = releases[label]
    image_field = release.manifest.image_format
    result = _run(["-c", LOAD_SCRIPT, REPO, label, image_field], _env(hub, tmp_path), timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    expected = {s["key"]: s for s in release.iter_samples(decode=True)}
    assert len(expected) == release.manifest.samples > 0
    for mode in ("downloaded", "streaming"):
        rows = loaded[mode]
        assert sorted(r["key"] for r in rows) == sorted(expected), mode
        for row in rows:
            sample = expected[row["key"]]
            assert row["image"] == _decoded_md5(sample["image"]), (mode, row["key"])
            assert row["depth"] == _decoded_md5(sample["depth"]), (mode, row["key"])
            _assert_provenance_equal(row["json"], sample["provenance"], f"{mode}:{row['key']}")
            assert {"__key__", image_field, "json"} <= set(row["columns"])


def test_pushing_a_published_version_again_uploads_nothing(hub, releases, published):
    commits_before = len(hub.state.repo("dataset", REPO).commits)
    puts_before = sum(hub.state.lfs_puts.values())
    push = push_release(releases["v1.0.0"].root, REPO, endpoint=hub.url, token=TOKEN)
    assert push.uploaded_files == 0 and push.commit_sha == _tags(hub, REPO)["v1.0.0"]
    assert len(hub.state.repo("dataset", REPO).commits) == commits_before
    assert sum(hub.state.lfs_puts.values()) == puts_before


def test_a_version_tag_with_different_content_is_refused(hub, releases, published, tmp_path):
    tags_before = _tags(hub, REPO)
    commits_before = len(hub.state.repo("dataset", REPO).commits)
    with pytest.raises(TagConflictError, match="already has tag v1.0.0"):
        push_release(releases["other-v1.0.0"].root, REPO, endpoint=hub.url, token=TOKEN)
    result = _cli_push(releases["other-v1.0.0"], REPO, _env(hub, tmp_path))
    assert result.returncode == 2 and "never moved" in result.stderr
    assert _tags(hub, REPO) == tags_before
    assert len(hub.state.repo("dataset", REPO).commits) == commits_before
    assert read_hub_record(releases["other-v1.0.0"].root) is None


def test_an_interrupted_push_resumes_and_uploads_only_what_is_missing(hub, releases, published, tmp_path):
    repo = f"{USER}/market1501-posedive-resume"
    release = releases["v1.0.0"]
    env = _env(hub, tmp_path)
    shards = release.manifest.shards
    hub.pause_lfs_upload(3)  # one file per commit: shards 0 and 1 are committed, shard 2 is in flight
    process = subprocess.Popen([sys.executable, "hub_upload.py", str(release.root), "--repo", repo,
                                "--commit-files", "1"], env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        assert hub.paused.wait(timeout=120), "the push never reached its third upload"
    finally:
        process.kill()
        process.communicate(timeout=30)
        hub.release.set()
    main = hub.tree(repo, "main")
    assert [p for p in sorted(main) if p.startswith("data/")] == [shards[0].path, shards[1].path]
    assert _tags(hub, repo) == {} and read_hub_record(release.root).pushes[0].repo_id == REPO
    commits_interrupted = len(hub.state.repo("dataset", repo).commits)

    result = _cli_push(release, repo, env, "--commit-files", "1")
    assert result.returncode == 0, result.stderr
    assert "2 of" in result.stderr and "already on" in result.stderr
    files = release.files()
    # each shard's bytes crossed the wire once in total; the rerun made one commit per missing file,
    # except the card and the manifest, which share the last commit
    for shard in shards:
        assert hub.state.lfs_puts[(repo, shard.sha256)] == 1, shard.path
    assert len(hub.state.repo("dataset", repo).commits) == commits_interrupted + (len(files) - 2) - 1
    assert set(hub.tree(repo, "v1.0.0")) - {".gitattributes"} == set(files)
    record = read_hub_record(release.root)
    assert {p.repo_id for p in record.pushes} == {REPO, repo}
    assert [p.uploaded_files for p in record.pushes if p.repo_id == repo] == [len(files) - 2]
    assert (release.root / HUB_RECORD).is_file() and paths.MANIFEST in files


def test_public_is_an_explicit_opt_in(hub, releases, tmp_path):
    repo = f"{USER}/market1501-posedive-public"
    result = _cli_push(releases["v1.1.0"], repo, _env(hub, tmp_path), "--public")
    assert result.returncode == 0, result.stderr
    assert hub.state.repo("dataset", repo).private is False
    anonymous = _run(["-c", f"from huggingface_hub import HfApi; print(HfApi(token=False).dataset_info({repo!r}).sha)"],
                     _env(hub, tmp_path, token=None))
    assert anonymous.returncode == 0 and anonymous.stdout.strip() == _tags(hub, repo)["v1.1.0"]


def test_a_push_without_a_token_says_how_to_log_in(hub, releases, tmp_path):
    repo = f"{USER}/market1501-posedive-anonymous"
    result = _cli_push(releases["v1.0.0"], repo, _env(hub, tmp_path, token=None))
    assert result.returncode == 2
    assert "hf auth login" in result.stderr and "Traceback" not in result.stderr
    assert hub.state.repo("dataset", repo) is None


def test_push_without_repo_goes_to_the_recipes_hub_repo_named_by_the_card(hub, hub_repo_release, tmp_path):
    release = hub_repo_release
    card = (release.root / paths.CARD).read_text()
    assert f'load_dataset("{HUB_REPO}", revision="v1.0.0"' in card and "<org>" not in card
    result = _run(["-m", "posedive.cli", "push", str(release.root)], _env(hub, tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == _tags(hub, HUB_REPO)["v1.0.0"]
    assert hub.state.repo("dataset", HUB_REPO).private
    assert hub.read(HUB_REPO, "v1.0.0", paths.CARD).decode() == card
    assert [p.repo_id for p in read_hub_record(release.root).pushes] == [HUB_REPO]
    assert "output.hub_repo" not in result.stderr  # no warning: the card names this repo

    # another --repo still pushes, but says the card names the recipe's repo
    other = f"{USER}/market1501-posedive-mirror"
    mirrored = _cli_push(release, other, _env(hub, tmp_path))
    assert mirrored.returncode == 0, mirrored.stderr
    assert "WARNING" in mirrored.stderr and HUB_REPO in mirrored.stderr and "output.hub_repo" in mirrored.stderr
    assert set(_tags(hub, other)) == {"v1.0.0"}
    assert push_release(release.root, endpoint=hub.url, token=TOKEN).repo_id == HUB_REPO


def test_push_without_repo_or_hub_repo_says_how_to_name_one(hub, releases, tmp_path):
    release = releases["v1.0.0"]
    repos_before = set(hub.state.repos)
    result = _run(["-m", "posedive.cli", "push", str(release.root)], _env(hub, tmp_path))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    message = " ".join(result.stderr.split())
    assert "--repo ORG/NAME" in message and "output.hub_repo" in message
    from posedive.errors import InputError

    with pytest.raises(InputError, match="output.hub_repo"):
        push_release(release.root, endpoint=hub.url, token=TOKEN)
    assert set(hub.state.repos) == repos_before


OTHER_TOKEN = "hf_posedive_test_token_other_77a1"
OTHER_USER = "another-lab"


def test_an_existing_public_repo_is_refused_without_public(hub, releases, tmp_path):
    repo = f"{USER}/market1501-posedive-already-public"
    env = _env(hub, tmp_path)
    assert _cli_push(releases["v1.0.0"], repo, env, "--public").returncode == 0
    commits = len(hub.state.repo("dataset", repo).commits)
    refused = _cli_push(releases["v1.1.0"], repo, env)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    message = " ".join(refused.stderr.split())
    assert "public repo" in message and "--public" in message
    assert len(hub.state.repo("dataset", repo).commits) == commits and set(_tags(hub, repo)) == {"v1.0.0"}
    assert _cli_push(releases["v1.1.0"], repo, env, "--public").returncode == 0
    assert set(_tags(hub, repo)) == {"v1.0.0", "v1.1.0"}


def test_a_bad_token_says_to_log_in_again(hub, releases, tmp_path):
    repo = f"{USER}/market1501-posedive-bad-token"
    result = _cli_push(releases["v1.0.0"], repo, _env(hub, tmp_path, token="hf_not_a_token"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    message = " ".join(result.stderr.split())
    assert "HTTP 401" in message and "hf auth login" in message
    assert hub.state.repo("dataset", repo) is None


def test_a_token_without_write_access_says_whose_namespace_it_is(hub, releases, tmp_path):
    repo = f"{USER}/market1501-posedive-not-yours"
    assert _cli_push(releases["v1.0.0"], repo, _env(hub, tmp_path)).returncode == 0
    commits = len(hub.state.repo("dataset", repo).commits)
    hub.state.tokens[OTHER_TOKEN] = OTHER_USER
    result = _cli_push(releases["v1.1.0"], repo, _env(hub, tmp_path, token=OTHER_TOKEN))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    message = " ".join(result.stderr.split())
    assert "HTTP 403" in message and f"write access to {USER}" in message
    assert len(hub.state.repo("dataset", repo).commits) == commits


def test_a_hub_outage_mid_push_says_to_rerun_and_the_rerun_resumes(hub, releases, tmp_path):
    repo = f"{USER}/market1501-posedive-outage"
    release = releases["v1.0.0"]
    env = _env(hub, tmp_path)
    hub.fail_commits(after=2, status=503)
    try:
        failed = _cli_push(release, repo, env, "--commit-files", "1")
    finally:
        hub.restore()
    assert failed.returncode == 2 and "Traceback" not in failed.stderr
    message = " ".join(failed.stderr.split())
    assert "HTTP 503" in message and "run the same push again" in message
    assert _tags(hub, repo) == {}
    uploaded = [p for p in hub.tree(repo, "main") if p.startswith("data/")]
    assert len(uploaded) == 2  # the two commits before the outage landed

    resumed = _cli_push(release, repo, env, "--commit-files", "1")
    assert resumed.returncode == 0, resumed.stderr
    assert f"{len(uploaded)} of" in resumed.stderr and "already on" in resumed.stderr
    assert set(hub.tree(repo, "v1.0.0")) - {".gitattributes"} == set(release.files())
    for shard in release.manifest.shards:
        assert hub.state.lfs_puts[(repo, shard.sha256)] == 1, shard.path


@pytest.mark.parametrize("repo, options, message, hint", [
    ("no-slash", {}, "must be ORG/NAME", "--repo my-lab/"),
    ("org/name", {"max_commit_files": 0}, "at least 1", "--commit-files"),
])
def test_push_arguments_that_cannot_be_used_are_input_errors_with_a_hint(tmp_path, repo, options, message, hint):
    from posedive.errors import InputError

    with pytest.raises(InputError, match=message) as caught:
        push_release(tmp_path, repo, **options)
    assert hint in caught.value.hint
