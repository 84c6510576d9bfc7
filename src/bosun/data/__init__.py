"""The data plane: the store (runs, journal, audit), group-committed journal writes."""

from bosun.data.audit import Verification
from bosun.data.store import Store

__all__ = ["Store", "Verification"]
