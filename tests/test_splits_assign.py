"""The split assignment as a pure function of (image, pid, camid, group) tables, and its helpers."""

from __future__ import annotations

import random
from collections import defaultdict

import numpy as np
import pytest

from posedive.analysis.splits import (
    LabelledImage,
    SplitRow,
    assign_splits,
    count_valid_queries,
    join_split,
    kmeans,
    measure_overlap,
    pose_clusters,
    read_split,
    viewpoint_region,
)
from posedive.errors import InputError, PathNotFound


def _random_table(num_pids: int = 60, num_groups: int = 8, seed: int = 3) -> list[LabelledImage]:
    """Identities seen by 2-4 cameras, each camera mostly showing one or two groups, plus distractors
    and images without a group."""
    rng = random.Random(seed)
    rows = []
    for pid in range(1, num_pids + 1):
        home = rng.randrange(num_groups)
        for camid in rng.sample(range(1, 7), rng.randint(2, 4)):
            for shot in range(rng.randint(1, 4)):
                group = home if rng.random() < 0.7 else rng.randrange(num_groups)
                rows.append(LabelledImage(f"{pid:04d}_c{camid}_{shot}.jpg", pid, camid, f"g{group}"))
    for index in range(12):
        rows.append(LabelledImage(f"0000_c1_{index}.jpg", 0, 1 + index % 6, f"g{index % num_groups}"))
    for index in range(5):
        rows.append(LabelledImage(f"{index + 1:04d}_c9_x.jpg", index + 1, 9, None))
    return rows


def _sides(rows: list[SplitRow]) -> dict[str, set]:
    sides = defaultdict(set)
    for row in rows:
        sides["train" if row.split == "train" else "test"].add(row)
    return sides


def test_train_and_test_share_no_identity_no_group_and_every_query_has_a_match():
    table = _random_table()
    rows, excluded, train_groups, test_groups = assign_splits(table, test_fraction=0.4, seed=1)
    sides = _sides(rows)
    train_pids = {r.pid for r in sides["train"]}
    test_pids = {r.pid for r in sides["test"] if r.pid > 0}
    assert train_pids and test_pids and not train_pids & test_pids
    assert {r.group for r in sides["train"]} <= set(train_groups)
    assert {r.group for r in sides["test"]} <= set(test_groups)
    assert not set(train_groups) & set(test_groups)
    assert set(train_groups) | set(test_groups) == {f"g{i}" for i in range(8)}
    assert measure_overlap(rows).model_dump() == {"identities": 0, "groups": 0, "images": 0}
    # every input image is either kept once or counted as excluded
    assert len(rows) + sum(excluded.values()) == len(table)
    assert len({r.image for r in rows}) == len(rows)
    assert excluded["no_group"] == 5
    # distractors only in the gallery; queries always have a gallery match in another camera
    assert all(r.split == "gallery" for r in rows if r.pid == 0)
    queries = [r for r in rows if r.split == "query"]
    assert queries and count_valid_queries(rows) == len(queries)
    per_pid_cam = defaultdict(int)
    for r in queries:
        per_pid_cam[(r.pid, r.camid)] += 1
    assert max(per_pid_cam.values()) == 1
    # the test share is near the target and most images are kept
    kept_test = sum(1 for r in rows if r.split != "train" and r.pid > 0)
    kept = sum(1 for r in rows if r.pid > 0)
    assert abs(kept_test / kept - 0.4) < 0.1
    assert kept > 0.6 * sum(1 for r in table if r.pid > 0 and r.group is not None)


def test_a_separable_table_is_split_without_losing_an_image():
    rows = []
    for pid in range(1, 21):
        groups = ("A", "B") if pid <= 10 else ("C", "D")
        for camid in (1, 2, 3):
            for group in groups:
                rows.append(LabelledImage(f"{pid}_{camid}_{group}.jpg", pid, camid, group))
    result, excluded, train_groups, test_groups = assign_splits(rows, test_fraction=0.5, seed=0)
    assert excluded == {}
    assert sorted([train_groups, test_groups]) == [["A", "B"], ["C", "D"]]
    assert len(result) == len(rows)


def test_the_assignment_depends_on_the_rows_not_their_order():
    table = _random_table(seed=5)
    shuffled = list(table)
    random.Random(0).shuffle(shuffled)
    assert assign_splits(table, seed=2) == assign_splits(shuffled, seed=2)


@pytest.mark.parametrize("rows, error, message", [
    ([LabelledImage("a.jpg", 1, 1, "g0"), LabelledImage("a.jpg", 2, 1, "g1")], ValueError, "listed twice"),
    ([LabelledImage("a.jpg", 1, 1, "g0"), LabelledImage("b.jpg", 2, 2, "g0")], InputError, "at least two groups"),
])
def test_unusable_tables_are_refused(rows, error, message):
    with pytest.raises(error, match=message):
        assign_splits(rows)


def test_test_fraction_must_be_a_proper_fraction():
    with pytest.raises(InputError, match="test_fraction"):
        assign_splits(_random_table(), test_fraction=1.0)


def test_kmeans_finds_separated_clusters_and_is_deterministic():
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0], [10, 0], [0, 10], [10, 10]], dtype=float)
    truth = np.repeat(np.arange(4), [30, 20, 25, 15])
    points = centres[truth] + rng.normal(0, 0.5, (len(truth), 2))
    labels = kmeans(points, 4, seed=1)
    assert np.array_equal(labels, kmeans(points, 4, seed=1))
    pairs = set(zip(truth.tolist(), labels.tolist()))
    assert len(pairs) == 4 and len({t for t, _ in pairs}) == 4 and len({lab for _, lab in pairs}) == 4
    assert np.bincount(labels).tolist() == [30, 25, 20, 15]  # renumbered by decreasing size
    with pytest.raises(ValueError, match="k must be"):
        kmeans(points, 0)


def test_pose_clusters_group_similar_skeletons_and_skip_missing_ones():
    rng = np.random.default_rng(1)
    standing = np.zeros((17, 3))
    standing[:, 0] = np.linspace(40, 60, 17)
    standing[:, 1] = np.linspace(10, 120, 17)
    standing[5:7, 1] = 30  # shoulders
    standing[11:13, 1] = 70  # hips
    bent = standing.copy()
    bent[13:17, 0] += 40  # knees and ankles kicked sideways
    poses = [standing + rng.normal(0, 0.5, standing.shape) for _ in range(6)]
    poses += [bent + rng.normal(0, 0.5, bent.shape) for _ in range(4)]
    labels = pose_clusters([*poses, None, np.zeros((17, 3))], k=2, seed=0)
    assert labels[-2:] == [None, None]
    assert len(set(labels[:6])) == 1 and len(set(labels[6:10])) == 1 and labels[0] != labels[6]
    assert labels[0] == "pose00"  # the larger cluster


def test_viewpoint_regions():
    assert viewpoint_region(3, None, "camera") == "c3"
    assert viewpoint_region(3, 10.0) == "c3-front"
    assert viewpoint_region(3, 185.0) == "c3-back"
    assert viewpoint_region(2, 80.0, "orientation") == "left"
    assert viewpoint_region(2, None) is None


def test_tables_round_trip_and_join_with_a_local_source(tmp_path):
    from posedive.analysis.splits import SplitReport, SplitResult, make_split, split_sizes, write_split

    source = tmp_path / "source"
    table = _random_table(num_pids=12)
    for row in table:
        (source / row.image).parent.mkdir(parents=True, exist_ok=True)
        (source / row.image).write_bytes(b"x")

    class Index:
        dataset, format, records = "toy", "folder", []

    result = make_split(Index(), "viewpoint", regions="camera", labelled=table, seed=0)
    assert isinstance(result, SplitResult) and isinstance(result.report, SplitReport)
    folder = write_split(result, tmp_path / "split")
    rows = read_split(folder)
    assert sorted(rows, key=lambda r: r.image) == result.rows
    assert result.report.sizes == split_sizes(rows)
    joined = join_split(rows, source)
    assert [j.path for j in joined] == [source / r.image for r in rows]
    assert {j.split for j in joined} == {"train", "query", "gallery"}
    only_query = join_split([{"image": r.image, "pid": r.pid, "camid": r.camid} for r in rows if r.split == "query"],
                            source, split="query")
    assert len(only_query) == sum(r.split == "query" for r in rows)
    (source / rows[0].image).unlink()
    with pytest.raises(PathNotFound, match="1 images of the split are not under"):
        join_split(rows, source)
