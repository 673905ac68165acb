"""Writing frames as videos: MP4 (H.264, libx264, yuv420p, through the ffmpeg binary imageio-ffmpeg ships)
and GIF (Pillow), atomically: files are written under a temporary name in the output folder and renamed
into place at the end, so an interrupted write never leaves a half-written video (nor a folder it made)."""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from deepcrl.errors import ConfigError
from deepcrl.render.common import check_int, quiet_fork

FORMATS = ("mp4", "gif", "both")
MAX_FPS = 120
GIF_MAX_SIDE = 320  # GIF frames are scaled down to at most this many pixels on their longer side
GIF_MAX_FPS = 15  # and keep every k-th frame, k = ceil(fps / GIF_MAX_FPS)


def check_format(fmt: str) -> tuple[str, ...]:
    """The formats that `fmt` ("mp4", "gif" or "both") writes."""
    if fmt not in FORMATS:
        raise ConfigError(f"format={fmt!r} is not allowed: choose one of {', '.join(FORMATS)}")
    return ("mp4", "gif") if fmt == "both" else (fmt,)


def output_stem(out: str | Path, formats: Sequence[str]) -> Path:
    """The path without suffix that the videos get (PATH.mp4, PATH.gif). A suffix .mp4 or .gif on
    `out` is dropped when it is one of the formats written; another video suffix is an error."""
    path = Path(out)
    if str(out).strip() == "" or path.name in ("", ".", ".."):
        raise ConfigError(
            f"out={str(out)!r} is not allowed: need a file path without suffix, e.g. videos/eval (writes videos/eval.mp4 and .gif)"
        )
    suffix = path.suffix.lower()
    if suffix in (".mp4", ".gif"):
        if suffix[1:] not in formats:
            raise ConfigError(
                f"out={str(out)!r} does not match format={'+'.join(formats)}: give the path without suffix, or --format {suffix[1:]}"
            )
        path = path.with_suffix("")
    for fmt in formats:
        target = path.with_name(f"{path.name}.{fmt}")
        if target.is_dir():
            raise ConfigError(f"out={str(out)!r} is not allowed: {str(target)!r} is a folder")
    for parent in [path.parent, *path.parent.parents]:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"out={str(out)!r} is not allowed: {str(parent)!r} is a file, not a folder")
            break
    return path


def gif_step(fps: int) -> int:
    """Every how many frames the GIF keeps one."""
    return max(1, math.ceil(fps / GIF_MAX_FPS))


def _gif_frame(frame: np.ndarray, palette=None):
    """A GIF frame: scaled to at most GIF_MAX_SIDE, 8-bit colour. The first frame's palette (median cut)
    serves every frame: the scene hardly changes colour, and a shared palette lets Pillow store each
    frame as the small rectangle that changed (GIFs about 2.5x smaller than with a palette per frame)."""
    from PIL import Image

    img = Image.fromarray(frame)
    h, w = frame.shape[:2]
    scale = min(1.0, GIF_MAX_SIDE / max(h, w))
    if scale < 1.0:
        img = img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BOX)
    if palette is None:
        return img.quantize(colors=255, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    return img.quantize(palette=palette, dither=Image.Dither.NONE)


@dataclass
class Written:
    path: Path
    format: str
    frames: int  # frames given to the writer (a GIF holds fewer: every gif_step-th, identical ones merged)
    width: int
    height: int
    bytes: int = field(default=0)


def write_videos(frames: Iterable[np.ndarray], stem: str | Path, formats: Sequence[str], fps: int) -> list[Written]:
    """Write the frames as STEM.mp4 and/or STEM.gif, atomically; returns what was written."""
    import imageio.v2 as imageio

    formats = tuple(formats)
    for fmt in formats:
        check_format(fmt)
    fps = check_int("fps", fps, 1, MAX_FPS)
    stem = Path(stem)
    created = [p for p in [stem.parent, *stem.parent.parents] if not p.exists()]
    stem.parent.mkdir(parents=True, exist_ok=True)
    temps: dict[str, Path] = {}
    writer = None
    try:
        for fmt in formats:
            fd, name = tempfile.mkstemp(prefix=f".{stem.name}-", suffix=f".{fmt}", dir=stem.parent)
            os.close(fd)
            os.chmod(name, 0o644)
            temps[fmt] = Path(name)
        if "mp4" in temps:
            writer = imageio.get_writer(
                temps["mp4"],
                format="FFMPEG",
                mode="I",
                fps=fps,
                codec="libx264",
                pixelformat="yuv420p",
                quality=6,
                macro_block_size=2,
                ffmpeg_log_level="error",
                output_params=["-movflags", "+faststart"],
            )
        gif, step, count, size = [], gif_step(fps), 0, None
        for frame in frames:
            frame = np.ascontiguousarray(frame, np.uint8)
            if size is None:
                size = frame.shape[:2]
            if writer is not None:
                with quiet_fork() if count == 0 else contextlib.nullcontext():  # ffmpeg starts with the first frame
                    writer.append_data(frame)
            if "gif" in temps and count % step == 0:
                gif.append(_gif_frame(frame, gif[0] if gif else None))
            count += 1
        if count == 0:
            raise ConfigError("no frames to write: the rollout drew none")
        if writer is not None:
            writer.close()
            writer = None
        if gif:
            duration = 10 * max(2, round(100 * step / fps))  # whole centiseconds, as GIF stores them; >= 20 ms, as browsers play them
            gif[0].save(temps["gif"], format="GIF", save_all=True, append_images=gif[1:], duration=duration, loop=0)
        written = []
        for fmt, tmp in temps.items():
            final = stem.with_name(f"{stem.name}.{fmt}")
            os.replace(tmp, final)
            written.append(Written(final, fmt, count, int(size[1]), int(size[0]), final.stat().st_size))
        return written
    except BaseException:
        if writer is not None:
            try:
                writer.close()
            except Exception:
                pass
        for tmp in temps.values():
            tmp.unlink(missing_ok=True)
        for folder in created:  # innermost first
            try:
                folder.rmdir()
            except OSError:
                break
        raise
