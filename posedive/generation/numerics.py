"""CPU kernels whose results do not depend on how many threads run them.

On CPU, torch's default convolution (oneDNN) and its fused attention kernels split their sums
differently for different thread counts, so the same request gave images a few pixels apart (by 1-2
levels) with 1 thread and with 2. Inside ``thread_independent_numerics`` a CPU generator uses the
plain convolution and the ``math`` attention kernel instead, whose results were measured identical
with 1 and 2 threads (``tests/test_thread_numerics.py`` builds a release both ways and compares its
bytes), so each worker may run as many threads as the CPUs it reserves without changing a release.
GPUs keep their fast kernels: their numerics do not depend on CPU threads.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    import torch


@contextlib.contextmanager
def thread_independent_numerics(device: "torch.device") -> Iterator[None]:
    """Run the enclosed torch work with thread-count-independent kernels when ``device`` is a CPU."""
    if device.type != "cpu":
        yield
        return
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel

    # Set and restored by hand: ``torch.backends.mkldnn.flags`` also sets oneDNN's TF32 switch and
    # warns about Intel GPUs on every call.
    mkldnn_was_enabled = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    try:
        with sdpa_kernel([SDPBackend.MATH]):
            yield
    finally:
        torch.backends.mkldnn.enabled = mkldnn_was_enabled
