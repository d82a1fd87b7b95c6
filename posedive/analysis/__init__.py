"""Dataset analysis on top of the pipeline: pose and orientation statistics of a source or a release
(``posedive stats``), evaluation splits (``posedive splits``) and their plots.

* :mod:`~posedive.analysis.images`: a pose estimator (and optionally the body fitter) over many image
  files or shard members, in parallel, with the content cache;
* :mod:`~posedive.analysis.orientation`, :mod:`~posedive.analysis.embedding`: body azimuth relative to
  the camera and normalised 2D pose vectors;
* :mod:`~posedive.analysis.stats`, :mod:`~posedive.analysis.plots`: the statistics report;
* :mod:`~posedive.analysis.splits`: MSMT17-S-style split labelling by viewpoint or pose.
"""
