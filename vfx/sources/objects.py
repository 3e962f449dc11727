"""Inputs on object storage: a prefix (`s3://bucket/videos/`) or one video (`s3://bucket/videos/x.mp4`).

A prefix is read like a local folder (vfx/sources/walk.py): every object with a video extension under it,
recursively, sorted, hidden names (a path component starting with ".") skipped, the folder a video sits in
as its label. Rows keep their URLs: nothing is downloaded here; the worker that processes a video copies it
to local scratch and removes the copy after (vfx/engine/worker.py). Listing goes through fsspec
(vfx.filesystems, credentials from the filesystem's own standard variables).
"""

from __future__ import annotations

from vfx.filesystems import filesystem
from vfx.sources.files import usage
from vfx.sources.ids import VIDEO_EXTENSIONS, is_video
from vfx.sources.lists import LIST_EXTENSIONS
from vfx.sources.rows import Row


def rows_from_url(url: str) -> list[Row]:
    """Rows of the videos under the prefix `url`, or the one row of the video `url`."""
    protocol, rest = url.split("://", 1)
    protocol = protocol.lower()
    fs = filesystem(protocol, url)
    root = rest.rstrip("/")
    name = root.rsplit("/", 1)[-1]
    try:
        if is_video(name) and fs.isfile(root):
            return [Row(rel=name, path=f"{protocol}://{root}", where=url)]
        if any(name.lower().endswith(ext) for ext in LIST_EXTENSIONS) and fs.isfile(root):
            raise usage(url, "a list file on object storage: copy it to local disk (its rows may be URLs)")
        found = fs.find(root, withdirs=False)
    except (OSError, ValueError) as exc:  # botocore's errors reach here as OSError subclasses through s3fs
        raise usage(url, f"cannot list ({type(exc).__name__}: {exc})") from None
    rows = []
    prefix = len(root) + 1
    for path in sorted(found):
        rel = path[prefix:] if path.startswith(root + "/") else None
        if not rel or not is_video(rel) or any(part.startswith(".") for part in rel.split("/")):
            continue
        label = rel.rsplit("/", 2)[-2] if "/" in rel else None
        rows.append(Row(rel=rel, path=f"{protocol}://{path}", where=f"{protocol}://{path}", label=label))
    if not rows:
        if not found and not fs.exists(root):
            raise usage(url, "no such object or prefix")
        raise usage(url, f"no video files found (looked for {' '.join(sorted(VIDEO_EXTENSIONS))}, under the prefix too)")
    return rows
