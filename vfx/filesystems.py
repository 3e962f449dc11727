"""The fsspec filesystem of an object-store URL, for stores (vfx.store.location) and inputs (vfx.sources.objects).

fsspec is imported here only: a local run never needs it. Filesystems read their credentials and endpoint
from their own standard variables (for S3: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL, ...);
vfx has no options for them.
"""

from __future__ import annotations

from vfx.errors import UsageError

#: pip extra that provides each protocol, for the error message when it is missing.
_EXTRAS = {"s3": "vfx[s3]", "s3a": "vfx[s3]", "gs": "gcsfs", "gcs": "gcsfs", "az": "adlfs", "abfs": "adlfs"}


def filesystem(protocol: str, url: str):
    """fsspec's filesystem for `protocol`; a missing package is a one-line usage error naming `url` and what to
    install."""
    extra = _EXTRAS.get(protocol, "fsspec")
    try:
        import fsspec
    except ImportError:
        raise UsageError(f"{url}: object-store URLs need fsspec: pip install '{extra}'") from None
    try:
        # No listings cache: other processes (workers, another run) add and delete objects, and a cached
        # listing would make a shard that was just uploaded, or a video just added, look missing.
        return fsspec.filesystem(protocol, use_listings_cache=False)
    except (ImportError, ValueError) as exc:
        raise UsageError(f"{url}: no filesystem for {protocol}:// ({exc}); pip install '{extra}'") from None
