import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from videos import pattern_frames, sample_video_dir, write_video  # noqa: E402

# Keep the suite's OpenCV/torch from fighting over the two cores with the Ray workers it starts.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session")
def samples() -> dict[str, Path]:
    folder = sample_video_dir()
    return {name: folder / f"{name}.mp4" for name in ("bikes", "bigbuckbunny", "carphone_pristine")}


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    """A class-per-folder dataset of 6 lossless 64x48 videos (20-30 frames) with known pixels."""
    root = tmp_path_factory.mktemp("tiny_dataset")
    for n in range(6):
        label = ("left", "right", "still")[n % 3]
        dx = {"left": -2, "right": 2, "still": 0}[label]
        write_video(root / label / f"clip {n}.mkv", pattern_frames(20 + 2 * n, seed=n, dx=dx))
    return root


@pytest.fixture(scope="session")
def ray_local():
    """One embedded Ray cluster for the tests that use the Ray engine in-process (startup costs seconds).

    `run_stage` reuses an initialised Ray and leaves it running. Two logical CPUs and one logical GPU:
    Ray resources are bookkeeping, so GPU scheduling logic is testable on this CPU-only machine.
    """
    import ray

    ray.init(address="local", num_cpus=2, num_gpus=1, include_dashboard=False, log_to_driver=False,
             logging_level="ERROR")
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def s3_endpoint():
    """One moto S3 server (a separate process on a free 127.0.0.1 port) for the whole session."""
    from s3server import moto_server

    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def s3(s3_endpoint, monkeypatch):
    """A fresh bucket on the moto server, with AWS_ENDPOINT_URL and dummy credentials set for this test.

    `s3.url("prefix/frames.vfx")` is an `s3://` URL in it; `s3.env` holds the variables for subprocesses
    (`env={**os.environ, **s3.env}`); `s3.keys(prefix)` lists what is stored. The bucket is emptied and
    deleted after the test.
    """
    from s3server import delete_bucket, new_bucket

    bucket = new_bucket(s3_endpoint, monkeypatch)
    yield bucket
    delete_bucket(bucket)
