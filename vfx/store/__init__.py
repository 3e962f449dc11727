"""Stores: what a run writes (worker side `vfx.store.shard`, driver side `vfx.store.writer`) and reads
(`vfx.store.reader`). The layout is in `vfx/store/layout.py` and FORMAT.md."""
