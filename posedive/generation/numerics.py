"""A CPU generator's images must not depend on how many threads its worker runs.

On CPU, torch's convolution (oneDNN), its fused attention kernels and its parallel reductions split
their sums by thread, so the same request gave images a few pixels apart (by 1-2 levels) with 1
thread and with 2. Plain convolution and the ``math`` attention kernel removed most of it, not all
(one image in ~15 of the small test build still differed in its last bits now and then), so a
generator on CPU computes on one thread: its images are then the same whatever the worker reserves
(``tests/test_thread_numerics.py`` builds a release with 1 and 2 threads and compares its bytes).
The worker's other stages keep its threads, and GPUs their own kernels: their numerics do not
depend on CPU threads.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    import torch


@contextlib.contextmanager
def thread_independent_numerics(device: "torch.device") -> Iterator[None]:
    """Run the enclosed torch work on one CPU thread when ``device`` is a CPU; restore the count after."""
    if device.type != "cpu":
        yield
        return
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
