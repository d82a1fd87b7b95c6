"""External pose banks (paper section 3.3): SMPL-24 poses from outside the Re-ID data.

* :mod:`~.format`: the ``.npz`` bank format and its version (``PoseBank``);
* :mod:`~.builtin`: the banks built into posedive, by name (``load_builtin_bank``);
* :mod:`~.registry`: the importers by name (``import_bank``) and how a recipe names its bank;
* :mod:`~.tags` and :mod:`~.selection`: what each pose is, and which poses a recipe keeps;
* one module per importer: :mod:`~.deepmimic` (the built-in clips), :mod:`~.amass`, :mod:`~.fits`
  (SMPL fits), :mod:`~.bvh` and :mod:`~.images` (people fitted in photographs or videos).
"""

from __future__ import annotations

from .amass import import_amass
from .builtin import BUILTIN_BANKS, builtin_bank, builtin_bank_path, load_builtin_bank
from .bvh import import_bvh
from .deepmimic import build_deepmimic_bank, deepmimic_clip_paths, deepmimic_frames_to_smpl, read_deepmimic_clip
from .fits import import_smpl_fits
from .format import BANK_FORMAT, DEFAULT_DEDUP_M, PoseBank
from .registry import (
    IMPORTERS,
    bank_importer,
    import_bank,
    import_config,
    imported_bank_path,
    load_pose_bank,
    load_recipe_bank,
    recipe_bank_path,
)
from .selection import SelectionSummary, select_poses, selection_mask, selection_summary
from .tags import GEOMETRY, pose_geometry, shown_tag

__all__ = [
    "BANK_FORMAT",
    "BUILTIN_BANKS",
    "GEOMETRY",
    "DEFAULT_DEDUP_M",
    "IMPORTERS",
    "PoseBank",
    "SelectionSummary",
    "bank_importer",
    "build_deepmimic_bank",
    "builtin_bank",
    "builtin_bank_path",
    "deepmimic_clip_paths",
    "deepmimic_frames_to_smpl",
    "import_amass",
    "import_bank",
    "import_bvh",
    "import_config",
    "imported_bank_path",
    "import_smpl_fits",
    "load_builtin_bank",
    "load_pose_bank",
    "load_recipe_bank",
    "pose_geometry",
    "read_deepmimic_clip",
    "recipe_bank_path",
    "select_poses",
    "selection_mask",
    "selection_summary",
    "shown_tag",
]
