"""Person detection on the bundled real video, measured against hand-labelled boxes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from posedive.video.detection import (
    BackgroundSubtractionDetector,
    VideoError,
    box_iou,
    detect_hog,
    iter_frames,
    video_info,
)
from posedive.video.evaluation import matched_boxes, recall

FIXTURES = Path(__file__).parent / "fixtures"
VTEST = FIXTURES / "vtest_clip" / "vtest_frames_000-260.mp4"  # frames 0-260 of vtest.avi (see its README)
LABELS = FIXTURES / "vtest_market" / "hand_labelled_boxes.json"


def test_box_iou_and_matching():
    a = np.array([[0, 0, 10, 20], [100, 100, 110, 120]])
    b = np.array([[0, 0, 10, 10], [200, 200, 210, 210]])
    iou = box_iou(a, b)
    assert iou.shape == (2, 2)
    assert iou[0, 0] == pytest.approx(0.5)
    assert iou[1].max() == 0.0
    # One prediction can match only one labelled box.
    assert matched_boxes([[0, 0, 10, 20]], [[0, 0, 10, 20], [0, 0, 10, 19]]) == 1
    assert recall({1: [[0, 0, 10, 20]]}, {1: [[0, 0, 10, 20]], 2: [[5, 5, 9, 9]]}) == (0.5, 1, 2)
    with pytest.raises(ValueError):
        recall({}, {})


def test_missing_video_is_named(tmp_path):
    with pytest.raises(VideoError, match="nothing.avi"):
        video_info(tmp_path / "nothing.avi")


def test_background_subtraction_recall_on_hand_labelled_boxes():
    """Background subtraction finds most labelled pedestrians with tight boxes, unlike HOG's loose ones.

    Measured on the committed clip (the labelled frames 120 and 250 it holds, 14 boxes): recall at
    IoU >= 0.5 of 9/14 (0.64) for background subtraction against 4/14 (0.29) for OpenCV's HOG people
    detector (2x upscaled frames), the same boxes as on the full vtest.avi (which gives 18/26 and
    8/26 over all five labelled frames). Its misses are people standing still (learnt into the
    background) and walkers merged into one blob.
    """
    frames = video_info(VTEST)[0]
    labels = {int(frame): boxes for frame, boxes in json.loads(LABELS.read_text())["frames"].items()
              if int(frame) < frames}
    assert sum(len(b) for b in labels.values()) >= 14
    detector = BackgroundSubtractionDetector.for_video(VTEST)
    predicted, hog = {}, {}
    for index, frame in iter_frames(VTEST):
        detections = detector.detect(index, frame)
        if index in labels:
            predicted[index] = [d.box for d in detections]
            hog[index] = detect_hog(frame)
        if index >= max(labels):
            break
    subtraction_recall, _, _ = recall(predicted, labels, 0.5)
    hog_recall, _, _ = recall(hog, labels, 0.5)
    assert subtraction_recall >= 0.6
    assert subtraction_recall > hog_recall
    # The boxes it returns are mostly people: few land on nobody.
    false = sum(int((box_iou(np.array(p), np.array(labels[f])).max(axis=1) < 0.3).sum()) for f, p in predicted.items() if p)
    assert false <= 0.25 * sum(len(p) for p in predicted.values())
