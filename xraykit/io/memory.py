"""Where the Arrow buffers a load builds come from.

Arrow's default allocator (mimalloc, on huge pages) keeps the memory of freed buffers
resident, and the C library's leaves holes in its heap that later buffers of other sizes
cannot reuse: either way a load's temporary arrays kept costing memory after they were gone.
Arrow's jemalloc pool gives freed pages back at once (Arrow sets its decay to zero). The
loader passes :data:`POOL` to the calls that build arrays; the process-wide default pool is
never changed (other threads, and pandas, keep theirs).

>>> POOL.backend_name in ("jemalloc", "system")
True
"""

from __future__ import annotations

import pyarrow as pa

__all__ = ["POOL"]


def _pool() -> pa.MemoryPool:
    try:
        return pa.jemalloc_memory_pool()
    except NotImplementedError:  # pragma: no cover - a pyarrow built without jemalloc
        return pa.system_memory_pool()


#: The memory pool of the arrays a load builds.
POOL = _pool()
