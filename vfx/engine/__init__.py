"""Run a stage over many videos: plan shards, execute on Ray (default) or in-process, own retries and progress."""

from vfx.engine.driver import RunSummary, init_ray, run_stage
from vfx.engine.options import ENGINES, RunOptions
from vfx.engine.stage import Stage
from vfx.types import VideoOutput

__all__ = ["ENGINES", "RunOptions", "RunSummary", "Stage", "VideoOutput", "init_ray", "run_stage"]
