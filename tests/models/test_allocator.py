import subprocess
import sys

import pytest

from linecube.models.allocator import retain_freed_memory

# Page faults of allocating, touching and freeing 64 MiB five times (after one warm-up round).
SCRIPT = """
import resource, sys
import numpy as np
if sys.argv[1] == "on":
    from linecube.models.allocator import retain_freed_memory
    assert retain_freed_memory()
def churn():
    a = np.empty(64 * 2**20, dtype=np.uint8)
    a.fill(1)
    del a
churn()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    churn()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def page_faults(setting: str) -> int:
    out = subprocess.run([sys.executable, "-c", SCRIPT, setting], capture_output=True, text=True,
                         check=True)
    return int(out.stdout.strip())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc only")
def test_freed_memory_is_reused_without_page_faults():
    off, on = page_faults("off"), page_faults("on")
    # glibc maps and unmaps the 64 MiB block each time (numpy asks for 2 MiB huge pages, so at
    # least 5 * 32 faults); retained, the block is reused with (almost) no fault
    assert off >= 5 * 32
    assert on * 20 < off


def test_returns_whether_applied():
    assert retain_freed_memory() is sys.platform.startswith("linux")
