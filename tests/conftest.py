import sys
from pathlib import Path

import pytest

# Test helpers (layouts.py, doubles.py) are imported as plain modules.
sys.path.insert(0, str(Path(__file__).parent))


# Module-scoped fixtures of the pose-estimation tests (each test module gets its own instance).
@pytest.fixture(scope="module")
def estimator():
    from posedive.pose import load_pose_estimator

    with load_pose_estimator("blazepose") as estimator:
        yield estimator


@pytest.fixture(scope="module")
def renders(tmp_path_factory):
    """Normal maps of the anny body from 12 azimuths (``pose_images.rendered_bodies``)."""
    from pose_images import rendered_bodies, skip_without_system_libraries

    return skip_without_system_libraries(rendered_bodies, str(tmp_path_factory.getbasetemp() / "filter-renders"))
