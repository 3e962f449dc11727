"""`RunOptions`: how a run is executed (engine, workers, cluster, resume rules, deadlines), built once and passed
down by every command and library entry point that runs a stage.

Nothing here changes what is stored: two runs with different options write the same store (the store's
parameters come from the stage). The CLI builds one from its shared run flags (`vfx.cli.common`), whose help
texts read the defaults from this class.
"""

from __future__ import annotations

from dataclasses import dataclass

from vfx.engine.plan import DEFAULT_SHARD_SIZE
from vfx.errors import UsageError

ENGINES = ("ray", "serial")

#: Without --video-timeout a video may take this long at least before the watchdog gives up on it ...
DEFAULT_VIDEO_TIMEOUT_SEC = 1800.0
#: ... or this many seconds per second of video where its duration is known (TV-L1 on a CPU core runs at
#: ~2-10 pairs/s on 256-px frames, so 30 s of 30 fps video can take ~8 min; 60x leaves room for slow nodes).
VIDEO_TIMEOUT_PER_VIDEO_SECOND = 60.0
#: An actor Ray cannot place within this many seconds is reported (with the cluster's pending demand) and
#: the run goes on with the actors that were placed.
DEFAULT_PLACEMENT_TIMEOUT_SEC = 60.0


@dataclass(frozen=True)
class RunOptions:
    """Execution options of one run. The defaults are the CLI's defaults."""

    engine: str = "ray"  # "ray" (embedded local cluster, or --address) or "serial" (in-process)
    workers: int | None = None  # None: as many as the cluster's nodes fit (per CPU, or per GPU share)
    address: str | None = None  # None: RAY_ADDRESS, else an embedded cluster on this machine
    overwrite: bool = False  # replace a store made with other parameters
    shard_size: int = DEFAULT_SHARD_SIZE  # videos per shard file at most
    shard_mb: float | None = None  # MiB per shard file aimed at; None: the stage's `shard_bytes`
    retry_failed: bool = False  # process again the videos an earlier run recorded as failed
    video_timeout: float | None = None  # seconds per video; None: the generous default of `timeout_for`
    placement_timeout: float = DEFAULT_PLACEMENT_TIMEOUT_SEC  # seconds an actor may wait to be placed
    progress: bool = True  # one tqdm bar on stderr

    def __post_init__(self):
        if self.engine not in ENGINES:
            raise UsageError(f"--engine must be one of {', '.join(ENGINES)}, got {self.engine!r}")
        if self.workers is not None and self.workers < 1:
            raise UsageError(f"--workers must be >= 1, got {self.workers}")
        if self.shard_size < 1:
            raise UsageError(f"--shard-size must be >= 1, got {self.shard_size}")
        if self.shard_mb is not None and not self.shard_mb > 0:
            raise UsageError(f"--shard-mb must be > 0, got {self.shard_mb:g}")
        if self.video_timeout is not None and not self.video_timeout > 0:
            raise UsageError(f"--video-timeout must be > 0 seconds, got {self.video_timeout:g}")
        if not self.placement_timeout > 0:
            raise UsageError(f"placement timeout must be > 0 seconds, got {self.placement_timeout:g}")
        if self.engine == "serial" and self.address is not None:
            raise UsageError("--address joins a Ray cluster: it needs --engine ray")

    def shard_target_bytes(self, stage) -> int:
        """Bytes per shard file aimed at: --shard-mb when given, else what the stage asks for."""
        return int(self.shard_mb * (1 << 20)) if self.shard_mb is not None else int(stage.shard_bytes)

    def timeout_for(self, duration_sec: float | None) -> float:
        """Seconds one video may take: --video-timeout as given, else the default scaled by its duration."""
        if self.video_timeout is not None:
            return float(self.video_timeout)
        scaled = VIDEO_TIMEOUT_PER_VIDEO_SECOND * duration_sec if duration_sec else 0.0
        return max(DEFAULT_VIDEO_TIMEOUT_SEC, scaled)
