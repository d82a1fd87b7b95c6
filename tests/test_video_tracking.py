"""Tracking, stitching and crop geometry on synthetic boxes whose identities are known."""

from __future__ import annotations

import numpy as np
import pytest

from posedive.video.crops import CropConfig, aspect_box, clean_detections, cut, spread
from posedive.video.detection import Detection
from posedive.video.tracking import IouTracker, StitchConfig, Track, appearance, split_on_appearance, stitch_tracks


def walker(x0: float, y0: float, vx: float, vy: float, frame: int, w: int = 20, h: int = 50) -> tuple[int, int, int, int]:
    x, y = x0 + vx * frame, y0 + vy * frame
    return (int(round(x)), int(round(y)), int(round(x)) + w, int(round(y)) + h)


def run(tracker: IouTracker, frames: int, walkers: list[tuple], drop: set[tuple[int, int]] = frozenset()):
    owner: dict[tuple[int, tuple], int] = {}
    for frame in range(frames):
        detections = []
        for who, params in enumerate(walkers):
            if (who, frame) in drop:
                continue
            box = walker(*params, frame)
            owner[(frame, box)] = who
            detections.append(Detection(frame=frame, box=box, fill=0.6))
        tracker.update(frame, detections)
    return tracker.finish(), owner


def test_separate_walkers_give_one_track_each_through_short_gaps():
    tracks, owner = run(IouTracker(), 40, [(10, 100, 3, 0), (400, 300, -2, 1)], drop={(0, 10), (0, 11), (1, 20)})
    assert len(tracks) == 2
    for track in tracks:
        owners = {owner[(d.frame, d.box)] for d in track.detections}
        assert len(owners) == 1
    assert sorted(len(t.detections) for t in tracks) == [38, 39]


def test_crossing_walkers_never_swap_identities():
    # Two people walk through each other: the tracker may end tracks, but no track holds both.
    tracks, owner = run(IouTracker(), 60, [(0, 100, 4, 0), (240, 100, -4, 0)])
    assert len(tracks) >= 2
    for track in tracks:
        assert len({owner[(d.frame, d.box)] for d in track.detections}) == 1
    crowded = set().union(*(t.crowded for t in tracks))
    assert crowded, "frames where the two boxes touch are flagged"


def _looks(track: Track, colour: tuple[int, int, int]) -> dict:
    patch = np.zeros((60, 24, 3), np.uint8)
    patch[:] = colour
    return {(d.frame, d.box): appearance(patch) for d in track.detections}


def test_stitching_joins_only_look_alike_fragments():
    a = Track(0, [Detection(f, walker(0, 100, 3, 0, f), 0.6) for f in range(0, 20)])
    a.velocity = np.array([3.0, 0, 3.0, 0])
    b = Track(1, [Detection(f, walker(0, 100, 3, 0, f), 0.6) for f in range(25, 45)])
    looks = {**_looks(a, (200, 30, 30)), **_looks(b, (200, 30, 30))}
    signature = {t.track_id: (looks[(t.detections[0].frame, t.detections[0].box)],) * 2 for t in (a, b)}
    joined = stitch_tracks([a, b], signature)
    assert len(joined) == 1 and len(joined[0].detections) == 40
    other = {**_looks(b, (30, 200, 30))}
    signature[1] = (other[(b.detections[0].frame, b.detections[0].box)],) * 2
    assert len(stitch_tracks([a, b], signature)) == 2


def test_identity_switch_inside_a_track_is_cut():
    track = Track(7, [Detection(f, walker(0, 100, 3, 0, f), 0.6) for f in range(40)])
    first, second = Track(0, track.detections[:22]), Track(0, track.detections[22:])
    looks = {**_looks(first, (200, 30, 30)), **_looks(second, (30, 30, 200))}
    parts = split_on_appearance([track], looks, StitchConfig())
    assert [len(p.detections) for p in parts] == [22, 18]
    same = {**_looks(track, (200, 30, 30))}
    assert len(split_on_appearance([track], same, StitchConfig())) == 1


def test_crops_are_one_to_two_and_clean_frames_exclude_borders_and_company():
    box = aspect_box((100, 50, 120, 150), 0.5, 0.1)
    width, height = box[2] - box[0], box[3] - box[1]
    assert width / height == pytest.approx(0.5, abs=0.02)
    assert height >= 120
    frame = np.full((200, 300, 3), 7, np.uint8)
    crop = cut(frame, (-10, -10, 40, 90), (32, 64))
    assert crop.shape == (64, 32, 3) and (crop == 7).all()
    config = CropConfig(min_height=40, trim=0)
    track = Track(0, [Detection(f, (100 + f, 50, 120 + f, 150), 0.6) for f in range(10)] + [Detection(10, (0, 50, 20, 150), 0.6)])
    company = {3: [Detection(3, (126, 60, 140, 150), 0.6)]}
    clean = clean_detections(track, (300, 200), config, company)
    frames = [d.frame for d in clean]
    assert 10 not in frames  # touches the frame border
    assert all(abs(f - 3) > config.crowd_window for f in frames)  # someone else in the crop nearby
    assert len(spread(clean, 2)) == 2


def test_a_missing_or_foreign_tracks_file_is_a_user_error_naming_it(tmp_path):
    from posedive.errors import FormatError, PathNotFound
    from posedive.video.records import read_tracks

    with pytest.raises(PathNotFound, match="tracks file not found") as missing:
        read_tracks(tmp_path / "tracks.json")
    assert "posedive pairs" in missing.value.hint
    foreign = tmp_path / "other.json"
    foreign.write_text('{"frames": []}')
    with pytest.raises(FormatError, match="other.json: not a posedive tracks file"):
        read_tracks(foreign)
