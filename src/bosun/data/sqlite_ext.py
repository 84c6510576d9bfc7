"""The SQLite driver the store uses, and sqlite-vec loaded into every one of its connections.

sqlite-vec (the knowledge base's vector index) is a loadable extension. CPython's ``sqlite3``
can load extensions only when it was built with ``--enable-loadable-sqlite-extensions``, and
pyenv's builds (this project's CI among them) are not. So the store picks its DBAPI module once:

```
sqlite3 (stdlib) can load extensions   -> sqlite3
else pysqlite3 is installed            -> pysqlite3.dbapi2 (the same module, built with a
                                          bundled recent SQLite: FTS5 and extensions on)
else                                   -> sqlite3; sqlite-vec stays off and vectors are
                                          scored in Python (bosun.data.vectors), logged once
```

Extensions load on each new connection (a ``connect`` listener), so the pool, the write
connection and migrations all see ``vec0`` alike.
"""

from __future__ import annotations

import functools
import importlib
import logging
import sqlite3
from types import ModuleType
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

__all__ = ["install_extensions", "sqlite_module", "vec_available"]

logger = logging.getLogger(__name__)


def _can_load(module: Any) -> bool:
    return hasattr(module.Connection, "enable_load_extension")


def sqlite_module() -> ModuleType:
    """The DBAPI module for the store's SQLite engines (see the module docstring)."""
    if _can_load(sqlite3):
        return sqlite3
    try:
        module = importlib.import_module("pysqlite3.dbapi2")
    except ImportError:
        return sqlite3
    return module if _can_load(module) else sqlite3


def vec_available(module: ModuleType) -> bool:
    """Whether sqlite-vec can be loaded through `module`."""
    if not _can_load(module):
        return False
    try:
        importlib.import_module("sqlite_vec")
    except ImportError:
        return False
    return True


def install_extensions(engine: Engine, module: ModuleType) -> None:
    """Load sqlite-vec into every connection `engine` opens, when `module` can."""
    if not vec_available(module):
        _warn_no_vec()
        return
    import sqlite_vec

    path = sqlite_vec.loadable_path()

    @event.listens_for(engine, "connect")
    def _load(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.enable_load_extension(True)
        try:
            dbapi_conn.load_extension(path)
        finally:
            # Leave the door shut: SQL that calls load_extension() must not reach it.
            dbapi_conn.enable_load_extension(False)


@functools.cache
def _warn_no_vec() -> None:
    logger.warning(
        "sqlite-vec cannot be loaded (this Python's sqlite3 cannot load extensions and "
        "pysqlite3 is not installed): knowledge-base vectors are scored in Python"
    )
