"""Geometry shared by the body models, fitting and the conditions stage: rotations and the SMPL-24
kinematic tree (:mod:`~posedive.geometry.rotations`) and pinhole cameras in the OpenCV convention
(:mod:`~posedive.geometry.cameras`). numpy only."""
