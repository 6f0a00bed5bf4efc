"""Channel adapters, one module per kind. Importing this package registers every kind."""

import importlib
import pkgutil

for _mod in pkgutil.iter_modules(__path__):
    if not _mod.name.startswith("_") and _mod.name != "targets":
        importlib.import_module(f"{__name__}.{_mod.name}")
