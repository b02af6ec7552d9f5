"""``process_image``: load an image, apply a list of Pillow operations, write the result.

Sources: ``file://`` URLs and local paths, ``http(s)://`` URLs (fetched with httpx), or
``generate:WIDTHxHEIGHT`` / no URL for a synthetic test pattern. The handler is sync on purpose:
decoding and resampling are CPU-bound and must not stall the worker's event loop.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

import httpx

# Pillow comes with the [local] (or [demo]) extra. Without it the demo worker still starts and
# serves the other handlers; process_image jobs fail unrecoverably saying what to install.
try:
    from PIL import Image, ImageFilter, ImageOps, UnidentifiedImageError
except ModuleNotFoundError:
    _PILLOW_MISSING = True
else:
    _PILLOW_MISSING = False

from jobline.demo._common import (
    atomic_write,
    invalid,
    is_int,
    is_number,
    output_dir,
    output_stem,
    require_object,
)
from jobline.shared.platform.errors import JobError, Unrecoverable
from jobline.worker.registry import JobContext, job

MAX_SIDE = 10_000
#: Caps decoded size well below Pillow's own bomb limit so one job cannot exhaust worker memory.
MAX_PIXELS = 50_000_000
MAX_SOURCE_BYTES = 50 * 1024 * 1024
MAX_OPERATIONS = 50
FETCH_TIMEOUT_S = 15.0
DEFAULT_PATTERN = (512, 512)

#: payload format name -> (Pillow format, file extension)
FORMATS: dict[str, tuple[str, str]] = {
    "png": ("PNG", "png"),
    "jpeg": ("JPEG", "jpg"),
    "jpg": ("JPEG", "jpg"),
    "webp": ("WEBP", "webp"),
}
_PIL_TO_NAME = {"PNG": "png", "JPEG": "jpeg", "WEBP": "webp"}
_GENERATE = re.compile(r"^generate:(\d{1,5})x(\d{1,5})$")

Op = Callable[["Image.Image"], "Image.Image"]


@dataclass
class Plan:
    ops: list[Op]
    output_format: str | None = None
    quality: int | None = None


# --- operations --------------------------------------------------------------------------------


def _side(spec: dict[str, Any], key: str, required: bool = True) -> int | None:
    value = spec.get(key)
    if value is None and not required:
        return None
    if not is_int(value) or not 1 <= value <= MAX_SIDE:
        raise invalid(f"{spec.get('op')}.{key} must be an integer in [1, {MAX_SIDE}], got {value!r}")
    return value


def _resize(spec: dict[str, Any]) -> Op:
    width, height = _side(spec, "width", False), _side(spec, "height", False)
    if width is None and height is None:
        raise invalid("resize needs width and/or height")

    def apply(img: Image.Image) -> Image.Image:
        # One side given: keep the aspect ratio, as image CDNs do.
        w = width or max(1, round(img.width * (height or 0) / img.height))
        h = height or max(1, round(img.height * (width or 0) / img.width))
        _check_pixels(w, h)
        return img.resize((w, h), Image.Resampling.LANCZOS)

    return apply


def _thumbnail(spec: dict[str, Any]) -> Op:
    size = _side(spec, "size")
    assert size is not None

    def apply(img: Image.Image) -> Image.Image:
        out = img.copy()
        out.thumbnail((size, size), Image.Resampling.LANCZOS)  # fits inside; never upscales
        return out

    return apply


def _grayscale(spec: dict[str, Any]) -> Op:
    def apply(img: Image.Image) -> Image.Image:
        return img.convert("LA" if "A" in img.getbands() else "L")

    return apply


def _rotate(spec: dict[str, Any]) -> Op:
    degrees = spec.get("degrees")
    if not is_number(degrees) or not math.isfinite(degrees) or abs(degrees) > 3600:
        raise invalid(f"rotate.degrees must be a finite number, got {degrees!r}")
    # Clockwise, like CSS and most image services; Pillow's own rotate is counter-clockwise.
    turn = float(degrees) % 360
    lossless = {
        90.0: Image.Transpose.ROTATE_270,
        180.0: Image.Transpose.ROTATE_180,
        270.0: Image.Transpose.ROTATE_90,
    }

    def apply(img: Image.Image) -> Image.Image:
        if turn == 0:
            return img
        if turn in lossless:
            # Right angles via transpose: exact pixels, no resampling blur.
            return img.transpose(lossless[turn])
        fill: Any = (0, 0, 0, 0) if img.mode == "RGBA" else None
        out = img.rotate(-turn, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=fill)
        _check_pixels(out.width, out.height)
        return out

    return apply


def _blur(spec: dict[str, Any]) -> Op:
    radius = spec.get("radius", 2)
    if not is_number(radius) or not 0 <= radius <= 100:
        raise invalid(f"blur.radius must be a number in [0, 100], got {radius!r}")

    def apply(img: Image.Image) -> Image.Image:
        return img.filter(ImageFilter.GaussianBlur(float(radius)))

    return apply


def _crop(spec: dict[str, Any]) -> Op:
    box = spec.get("box")
    if not isinstance(box, list) or len(box) != 4 or not all(is_int(v) for v in box):
        raise invalid(f"crop.box must be [left, top, right, bottom] integers, got {box!r}")
    left, top, right, bottom = (int(v) for v in box)

    def apply(img: Image.Image) -> Image.Image:
        # Checked at apply time: the valid range depends on earlier operations.
        if not (0 <= left < right <= img.width and 0 <= top < bottom <= img.height):
            raise invalid(f"crop.box {box} is outside the {img.width}x{img.height} image")
        return img.crop((left, top, right, bottom))

    return apply


_OPS: dict[str, Callable[[dict[str, Any]], Op]] = {
    "resize": _resize,
    "thumbnail": _thumbnail,
    "grayscale": _grayscale,
    "rotate": _rotate,
    "blur": _blur,
    "crop": _crop,
}


def parse_operations(raw: object) -> Plan:
    """Validate every operation before touching the image, so a bad payload fails fast."""
    if raw is None:
        raw = []
    if not isinstance(raw, list) or len(raw) > MAX_OPERATIONS:
        raise invalid(f"operations must be a list of at most {MAX_OPERATIONS} objects")
    plan = Plan(ops=[])
    for i, spec in enumerate(raw):
        if not isinstance(spec, dict) or not isinstance(spec.get("op"), str):
            raise invalid(f"operations[{i}] must be an object with an 'op' string")
        name = spec["op"]
        if name == "format":
            fmt = spec.get("format")
            if not isinstance(fmt, str) or fmt.lower() not in FORMATS:
                raise invalid(f"format must be one of png, jpeg, webp; got {fmt!r}")
            quality = spec.get("quality")
            if quality is not None and (not is_int(quality) or not 1 <= quality <= 100):
                raise invalid(f"format.quality must be an integer in [1, 100], got {quality!r}")
            plan.output_format, plan.quality = fmt.lower(), quality
        elif name in _OPS:
            plan.ops.append(_OPS[name](spec))
        else:
            raise invalid(f"operations[{i}]: unknown op {name!r}")
    return plan


# --- sources -----------------------------------------------------------------------------------


def _check_pixels(width: int, height: int) -> None:
    if width * height > MAX_PIXELS:
        raise invalid(f"image of {width}x{height} exceeds the {MAX_PIXELS}-pixel limit")


def make_test_pattern(width: int, height: int) -> Image.Image:
    """Deterministic RGB pattern: red ramps left->right, green top->bottom, blue checkerboard."""
    _check_pixels(width, height)
    ramp = Image.linear_gradient("L")  # 256x256, dark at the top
    green = ramp.resize((width, height))
    red = ramp.transpose(Image.Transpose.ROTATE_90).transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    red = red.resize((width, height))
    cell = 32
    cols, rows = -(-width // cell), -(-height // cell)
    checker = Image.new("L", (cols, rows))
    checker.putdata([255 * ((x + y) % 2) for y in range(rows) for x in range(cols)])
    blue = checker.resize((cols * cell, rows * cell), Image.Resampling.NEAREST)
    blue = blue.crop((0, 0, width, height))
    return Image.merge("RGB", (red, green, blue))


def _fetch(url: str) -> bytes:
    try:
        with httpx.stream("GET", url, timeout=FETCH_TIMEOUT_S, follow_redirects=True) as resp:
            if resp.status_code == 429:
                raise JobError(f"{url} is rate limiting us", error_type="rate_limited")
            if resp.status_code >= 500:
                raise JobError(f"{url} returned HTTP {resp.status_code}", error_type="upstream_error")
            if resp.status_code >= 400:
                # 4xx (other than 429): the URL itself is wrong; retrying will not fix it.
                raise invalid(f"imageUrl returned HTTP {resp.status_code}")
            chunks: list[bytes] = []
            total = 0
            for chunk in resp.iter_bytes():
                total += len(chunk)
                if total > MAX_SOURCE_BYTES:
                    raise invalid(f"imageUrl is larger than {MAX_SOURCE_BYTES} bytes")
                chunks.append(chunk)
            return b"".join(chunks)
    except httpx.TimeoutException as exc:
        raise JobError(f"fetching {url} timed out", error_type="timeout") from exc
    except httpx.ConnectError as exc:
        raise JobError(f"cannot connect to {url}: {exc}", error_type="connection_refused") from exc
    except httpx.TransportError as exc:
        raise JobError(f"fetching {url} failed: {exc}", error_type="network_error") from exc


def _decode(source: io.BytesIO | Path, label: str) -> tuple[Image.Image, str | None]:
    try:
        with Image.open(source) as img:
            # Image.open only parsed the header: refuse huge images before decoding pixels.
            _check_pixels(img.width, img.height)
            img.load()
            fmt = img.format
            # Honour EXIF orientation so "resize 200x100" means what the user sees.
            out = ImageOps.exif_transpose(img)
    except FileNotFoundError as exc:
        raise invalid(f"imageUrl {label} does not exist") from exc
    except (UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise invalid(f"imageUrl {label} is not a supported image: {exc}") from exc
    except OSError as exc:  # truncated/corrupt data, permission denied, a directory, ...
        raise invalid(f"cannot read imageUrl {label}: {exc}") from exc
    # Palette/CMYK/16-bit modes cannot be blurred or saved to every format; normalise once.
    if out.mode not in ("RGB", "RGBA", "L", "LA"):
        has_alpha = "A" in out.getbands() or "transparency" in out.info
        out = out.convert("RGBA" if has_alpha else "RGB")
    return out, _PIL_TO_NAME.get(fmt or "")


def load_source(url: object) -> tuple[Image.Image, str | None]:
    """Return the image and its source format name (None when it has no supported format)."""
    if url is None:
        return make_test_pattern(*DEFAULT_PATTERN), None
    if not isinstance(url, str) or not url:
        raise invalid(f"imageUrl must be a string, got {url!r}")
    if url.startswith("generate:"):
        m = _GENERATE.match(url)
        if not m or not all(1 <= int(v) <= MAX_SIDE for v in m.groups()):
            raise invalid(f"imageUrl must look like generate:WIDTHxHEIGHT (max {MAX_SIDE})")
        return make_test_pattern(int(m.group(1)), int(m.group(2))), None
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        return _decode(io.BytesIO(_fetch(url)), url)
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise invalid(f"file URL must be local, got host {parts.netloc!r}")
        return _decode(Path(url2pathname(parts.path)), url)
    # len(scheme) == 1 is a Windows drive letter, i.e. still a path.
    if scheme and len(scheme) > 1:
        raise invalid(f"unsupported imageUrl scheme {scheme!r}")
    return _decode(Path(url), url)


# --- output ------------------------------------------------------------------------------------


def encode(img: Image.Image, fmt: str, quality: int | None) -> bytes:
    pil_format, _ = FORMATS[fmt]
    if pil_format == "JPEG" and img.mode not in ("RGB", "L"):
        # JPEG has no alpha channel: flatten onto white rather than letting it turn black.
        flat = Image.new("RGB" if img.mode == "RGBA" else "L", img.size, "white")
        flat.paste(img, mask=img.getchannel("A"))
        img = flat
    buf = io.BytesIO()
    options: dict[str, Any] = {}
    if pil_format in ("JPEG", "WEBP"):
        options["quality"] = quality or 85
    elif pil_format == "PNG":
        options["optimize"] = True
    img.save(buf, format=pil_format, **options)
    return buf.getvalue()


@job("process_image", queue="image-processing", timeout="60s")
def process_image(payload: dict[str, Any], ctx: JobContext | None = None) -> dict[str, Any]:
    if _PILLOW_MISSING:
        raise Unrecoverable("process_image needs Pillow: pip install 'jobline[local]' "
                            "(or 'jobline[demo]')", error_type="missing_dependency")
    payload = require_object(payload)
    plan = parse_operations(payload.get("operations"))
    img, source_format = load_source(payload.get("imageUrl"))
    for op in plan.ops:
        img = op(img)
    fmt = plan.output_format or source_format or "png"
    data = encode(img, fmt, plan.quality)
    path = output_dir("images") / f"{output_stem(ctx)}.{FORMATS[fmt][1]}"
    atomic_write(path, data)
    return {
        "processedUrl": path.as_uri(),
        "width": img.width,
        "height": img.height,
        "bytes": len(data),
        "format": FORMATS[fmt][0].lower(),
        "mode": img.mode,
    }

