"""``posedive splits`` end to end: a Market-1501 layout in, disjoint tables out, published as a config
of a dataset repo on the local Hub-compatible server and loaded back with ``datasets``."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hub_server import HubServer, client_env
from layouts import make_market

from posedive.analysis.splits import SplitReport, join_split, read_split

REPO_ROOT = Path(__file__).resolve().parents[1]
TOKEN = "hf_posedive_splits_token_81d2"
REPO = "posedive-lab/market-splits"


@pytest.fixture(scope="module")
def hub():
    server = HubServer(tokens={TOKEN: "posedive-lab"}).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def market(tmp_path_factory):
    root = tmp_path_factory.mktemp("market") / "Market-1501"
    return make_market(root, train_pids=tuple(range(1, 13)), test_pids=tuple(range(20, 28)), cams=(1, 2, 3, 4, 5, 6),
                       per_cam=2)


@pytest.fixture(scope="module")
def split_run(hub, market, tmp_path_factory):
    home = tmp_path_factory.mktemp("splits-home")
    out = home / "viewpoint"
    result = subprocess.run(
        [sys.executable, "-m", "posedive.cli", "splits", str(market), "--by", "viewpoint", "--regions", "camera",
         "--out", str(out), "--push", REPO, "--seed", "3"],
        env=client_env(hub.url, home, TOKEN, extra_paths=(str(REPO_ROOT),)), cwd=REPO_ROOT, capture_output=True,
        text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    return out, result, home


def test_camera_split_tables_are_disjoint_in_cameras_and_identities(split_run, market):
    out, result, _ = split_run
    rows = read_split(out)
    report = SplitReport.model_validate_json((out / "split.json").read_text())
    train = [r for r in rows if r.split == "train"]
    test = [r for r in rows if r.split != "train"]
    assert train and test and any(r.split == "query" for r in rows)
    assert not {r.camid for r in train} & {r.camid for r in test}
    assert not {r.pid for r in train} & {r.pid for r in test if r.pid > 0}
    assert report.overlap.model_dump() == {"identities": 0, "groups": 0, "images": 0}
    assert {name: size.images for name, size in report.sizes.items()} == {
        name: sum(r.split == name for r in rows) for name in ("train", "query", "gallery")}
    assert sorted(report.train_groups + report.test_groups) == [f"c{c}" for c in range(1, 7)]
    assert report.queries_with_cross_camera_match == report.sizes["query"].images
    # junk (pid -1) never appears; every table row names a real file of the source
    assert all(r.pid >= 0 for r in rows)
    assert all(j.path.is_file() for j in join_split(rows, market))
    assert "Overlap train/test: 0 identities, 0 groups, 0 images" in result.stderr + result.stdout


def test_published_split_loads_as_its_own_config_and_joins_with_the_local_source(hub, split_run, market):
    out, result, home = split_run
    sha = result.stdout.strip().splitlines()[-1]
    repo = hub.state.repo("dataset", REPO)
    assert repo.private and repo.branches["main"] == sha
    assert {"viewpoint/train.csv", "viewpoint/query.csv", "viewpoint/gallery.csv", "viewpoint/split.json",
            "README.md"} <= set(hub.tree(REPO, "main"))
    script = textwrap.dedent("""
        import json, sys
        from datasets import load_dataset
        dataset = load_dataset(sys.argv[1], "viewpoint")
        print(json.dumps({name: [dict(row) for row in dataset[name]] for name in dataset}))
    """)
    loaded = subprocess.run([sys.executable, "-c", script, REPO],
                            env=client_env(hub.url, home, TOKEN, extra_paths=(str(REPO_ROOT),)), cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=180)
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    tables = json.loads(loaded.stdout.strip().splitlines()[-1])
    assert set(tables) == {"train", "query", "gallery"}
    for name, rows in tables.items():
        with open(out / f"{name}.csv", newline="") as handle:
            expected = [{k: (int(v) if k in ("pid", "camid") else v) for k, v in row.items()}
                        for row in csv.DictReader(handle)]
        assert rows == expected, name
        joined = join_split(rows, market, split=name)
        assert [j.path for j in joined] == [market / row["image"] for row in rows]


def test_a_second_push_keeps_the_configs_of_split_folders_published_before(hub, split_run, tmp_path):
    """Each push sends only its own folders; the card it writes still lists every split folder in the repo."""
    import shutil

    import yaml

    out, _, home = split_run
    repo = "posedive-lab/market-splits-two"
    second = shutil.copytree(out, tmp_path / "camera")
    script = "import sys\nfrom posedive.hub import push_splits\nprint(push_splits({sys.argv[2]: sys.argv[3]}, sys.argv[1]))\n"
    env = client_env(hub.url, home, TOKEN, extra_paths=(str(REPO_ROOT),))
    for name, folder in (("viewpoint", out), ("camera", second)):
        pushed = subprocess.run([sys.executable, "-c", script, repo, name, str(folder)], env=env, cwd=REPO_ROOT,
                                capture_output=True, text=True, timeout=180)
        assert pushed.returncode == 0, pushed.stderr[-3000:]
    tree = hub.tree(repo, "main")
    for name in ("viewpoint", "camera"):
        assert {f"{name}/{file}" for file in ("train.csv", "query.csv", "gallery.csv", "split.json")} <= set(tree)
    card = hub.read(repo, "main", "README.md").decode()
    front = yaml.safe_load(card.split("---\n")[1])
    assert [config["config_name"] for config in front["configs"]] == ["camera", "viewpoint"]
    assert front["configs"][1]["data_files"] == [{"split": s, "path": f"viewpoint/{s}.csv"}
                                                 for s in ("train", "query", "gallery")]
    report = SplitReport.model_validate_json((out / "split.json").read_text())
    row = (f"{report.sizes['train'].images} | {report.sizes['query'].images} | {report.sizes['gallery'].images} | "
           f"0 / 0 / 0 |")
    assert f"| `camera` | {row}" in card and f"| `viewpoint` | {row}" in card
