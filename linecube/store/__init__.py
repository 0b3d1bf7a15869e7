"""The on-disk training store (Zarr arrays + Parquet catalogue) and ingest into it."""

from linecube.store.store import SCHEMA_VERSION, Store, StoreMeta

__all__ = ["SCHEMA_VERSION", "Store", "StoreMeta"]
