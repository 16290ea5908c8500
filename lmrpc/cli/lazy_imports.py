"""The client's commands load the modules of ``storage`` and ``actors`` only when something in
them is used, which is never: the commands are derived from the method modules' params models
and docstrings, and those modules import storage and actors for their handlers, which only
the server runs. Loaded eagerly, they would bring SQLAlchemy and Trio, about half of a
command's start. The server never installs this finder: it imports everything at its start.

Names a method module needs at import time come from light modules (``storage.list_fields``,
``storage.errors``, ``actors.usage``); a name taken from a module with SQL would load it.
"""

import importlib.util
import sys
from collections.abc import Sequence
from importlib.abc import MetaPathFinder
from importlib.machinery import ModuleSpec, PathFinder
from types import ModuleType

PACKAGES = ("storage.", "actors.")  # their submodules


class LazySubmodules(MetaPathFinder):
    """Finds the submodules of PACKAGES where Python would, with a loader that runs a module
    when one of its attributes is first read (importlib.util.LazyLoader)."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if not fullname.startswith(PACKAGES):
            return None
        spec = PathFinder.find_spec(fullname, path, target)
        if spec is None or spec.loader is None:
            return None
        spec.loader = importlib.util.LazyLoader(spec.loader)
        return spec


def install() -> None:
    """Make the submodules of PACKAGES imported from now on lazy (this process only)."""
    sys.meta_path.insert(0, LazySubmodules())
