"""`vfx export`: a store's videos in the layouts other tools read (ActionFormer/TriDet, BMN/BSN, mmaction2
rawframes, video_features). `export_store(store, out, to=...)`; formats register in `vfx.export.base`."""

from vfx.export import features_formats, rawframes  # noqa: F401 - register the formats
from vfx.export.base import REGISTRY
from vfx.export.run import ExportSummary, export_store

FORMATS = tuple(sorted(REGISTRY))

__all__ = ["FORMATS", "ExportSummary", "export_store"]
