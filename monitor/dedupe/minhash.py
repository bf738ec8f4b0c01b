"""datasketch's MinHash and LeanMinHash, without the rest of the package. No I/O.

`import datasketch` runs the package's `__init__`, which imports every sketch it ships, scipy's
integrators among them (for LSH parameters this project does not use): about half a second
to a second in the polling process and again in each extraction worker (issue 14). The two
classes used here need only numpy and the package's hash functions, so they are imported
as submodules under a stand-in for the package, which is then removed: a later `import
datasketch` runs the real `__init__`, which takes these very modules from `sys.modules`.
"""

from __future__ import annotations

import importlib.util
import sys
import types


def _load() -> None:
    if "datasketch" in sys.modules:
        return
    spec = importlib.util.find_spec("datasketch")
    if spec is None or spec.submodule_search_locations is None:
        return  # not installed as a package: the imports below say so
    stand_in = types.ModuleType("datasketch")
    stand_in.__path__ = list(spec.submodule_search_locations)
    sys.modules["datasketch"] = stand_in
    try:
        import datasketch.lean_minhash
        import datasketch.minhash  # noqa: F401
    finally:
        if sys.modules.get("datasketch") is stand_in:
            del sys.modules["datasketch"]


_load()

from datasketch.lean_minhash import LeanMinHash  # noqa: E402
from datasketch.minhash import MinHash  # noqa: E402

__all__ = ["LeanMinHash", "MinHash"]
