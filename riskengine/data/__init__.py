"""Market data: the canonical tick schema, importers, and the local Parquet tick catalog."""

from riskengine.data.catalog import Catalog, ImportReport
from riskengine.data.schema import TRADES

__all__ = ["TRADES", "Catalog", "ImportReport"]
