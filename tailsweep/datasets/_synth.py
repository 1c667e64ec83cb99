"""Procedurally drawn garment images with long-tailed attributes: the demo dataset.

Each image shows one garment (type, sleeves, neckline, pattern, colour) on a noisy background.
Attribute frequencies follow a steep long tail like a real catalogue: the rarest values
(puff sleeves, jumpsuits, off-shoulder necklines, zigzag pattern, orange) sit near 0.5-1 % of
items. Every attribute is drawn visibly, so a model can learn it and schemes differ on the tail.

Labels form a shallow hierarchy so the hierarchy work can reuse the table:
``zone:upper -> garment:tshirt``, ``patterned -> pattern:stripes``; sleeve, neckline and colour
values are top-level labels. Deterministic given ``seed``.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa

from ._format import LabelTable, Manifest, write_table

# garment -> (zone, probability, has_sleeves, has_neckline)
GARMENTS: dict[str, tuple[str, float, bool, bool]] = {
    "tshirt": ("upper", 0.27, True, True),
    "pants": ("lower", 0.19, False, False),
    "shirt": ("upper", 0.12, True, True),
    "dress": ("full", 0.11, True, True),
    "shorts": ("lower", 0.09, False, False),
    "skirt": ("lower", 0.08, False, False),
    "jacket": ("outer", 0.06, True, True),
    "blouse": ("upper", 0.045, True, True),
    "coat": ("outer", 0.017, True, True),
    "jumpsuit": ("full", 0.008, True, True),
}
SLEEVES = {"short": 0.45, "long": 0.40, "sleeveless": 0.14, "puff": 0.01}
NECKLINES = {"crew": 0.62, "v": 0.25, "collar": 0.12, "off_shoulder": 0.01}
PATTERNS = {"solid": 0.66, "stripes": 0.17, "dots": 0.09, "checks": 0.065, "zigzag": 0.012}
COLOURS = {
    "black": ((25, 25, 28), 0.24),
    "white": ((238, 238, 232), 0.17),
    "blue": ((40, 70, 170), 0.15),
    "grey": ((128, 128, 128), 0.12),
    "red": ((190, 30, 35), 0.09),
    "green": ((40, 130, 60), 0.08),
    "beige": ((205, 180, 140), 0.06),
    "yellow": ((235, 205, 40), 0.04),
    "pink": ((240, 140, 185), 0.025),
    "purple": ((120, 50, 150), 0.009),
    "orange": ((240, 120, 20), 0.008),
}
ZONES = ("upper", "lower", "full", "outer")


def label_rows() -> list[dict]:
    """The label nodes of the demo table, with parents and display names."""
    rows = [{"label": f"zone:{z}", "parents": [], "name": f"{z} body" if z != "outer" else "outerwear"} for z in ZONES]
    rows += [{"label": f"garment:{g}", "parents": [f"zone:{z}"], "name": g} for g, (z, *_) in GARMENTS.items()]
    rows += [{"label": f"sleeve:{s}", "parents": [], "name": f"{s} sleeves"} for s in SLEEVES]
    rows += [{"label": f"neck:{n}", "parents": [], "name": f"{n} neckline"} for n in NECKLINES]
    rows += [{"label": "patterned", "parents": [], "name": "patterned"}]
    rows += [{"label": f"pattern:{p}", "parents": ["patterned"], "name": p} for p in PATTERNS if p != "solid"]
    rows += [{"label": f"colour:{c}", "parents": [], "name": c} for c in COLOURS]
    return rows


def _choice(rng: np.random.Generator, table: dict) -> str:
    keys = list(table)
    probs = np.array([v[1] if isinstance(v, tuple) else v for v in table.values()], dtype=float)
    return keys[int(rng.choice(len(keys), p=probs / probs.sum()))]


def sample_attributes(rng: np.random.Generator) -> dict[str, str | None]:
    garment = _choice(rng, {g: v[1] for g, v in GARMENTS.items()})
    zone, _, has_sleeves, has_neck = GARMENTS[garment]
    return {
        "garment": garment,
        "zone": zone,
        "sleeve": _choice(rng, SLEEVES) if has_sleeves else None,
        "neck": _choice(rng, NECKLINES) if has_neck else None,
        "pattern": _choice(rng, PATTERNS),
        "colour": _choice(rng, COLOURS),
    }


def attributes_to_labels(a: dict[str, str | None]) -> list[str]:
    """Most specific labels only (the table closes ancestors), plus top-level attribute values."""
    out = [f"garment:{a['garment']}"]
    if a["sleeve"]:
        out.append(f"sleeve:{a['sleeve']}")
    if a["neck"]:
        out.append(f"neck:{a['neck']}")
    if a["pattern"] != "solid":
        out.append(f"pattern:{a['pattern']}")
    out.append(f"colour:{a['colour']}")
    return out


def _jitter(rng, rgb, amount=18):
    return tuple(int(np.clip(c + rng.integers(-amount, amount + 1), 0, 255)) for c in rgb)


def _draw_sleeves(m, sleeve: str | None, shoulder: float, sy: float, scale: float, X) -> None:
    """Both sleeves on the mask ``m``: short, long or puff (none for sleeveless)."""
    if sleeve == "short":
        m.polygon(
            [
                (X(-shoulder), sy),
                (X(-shoulder - 8), sy + 7 * scale),
                (X(-shoulder - 4), sy + 12 * scale),
                (X(-shoulder + 1), sy + 8 * scale),
            ],
            fill=255,
        )
        m.polygon(
            [
                (X(shoulder), sy),
                (X(shoulder + 8), sy + 7 * scale),
                (X(shoulder + 4), sy + 12 * scale),
                (X(shoulder - 1), sy + 8 * scale),
            ],
            fill=255,
        )
    elif sleeve == "long":
        m.polygon(
            [
                (X(-shoulder), sy),
                (X(-shoulder - 6), sy + 4 * scale),
                (X(-shoulder - 9), sy + 30 * scale),
                (X(-shoulder - 4), sy + 31 * scale),
                (X(-shoulder + 1), sy + 9 * scale),
            ],
            fill=255,
        )
        m.polygon(
            [
                (X(shoulder), sy),
                (X(shoulder + 6), sy + 4 * scale),
                (X(shoulder + 9), sy + 30 * scale),
                (X(shoulder + 4), sy + 31 * scale),
                (X(shoulder - 1), sy + 9 * scale),
            ],
            fill=255,
        )
    elif sleeve == "puff":
        r = 7 * scale
        m.ellipse([X(-shoulder - 6) - r, sy + 5 * scale - r, X(-shoulder - 6) + r, sy + 5 * scale + r], fill=255)
        m.ellipse([X(shoulder + 6) - r, sy + 5 * scale - r, X(shoulder + 6) + r, sy + 5 * scale + r], fill=255)


def draw_garment(a: dict[str, str | None], rng: np.random.Generator, size: int = 64):
    """Draw one garment; returns a PIL RGB image of ``size`` x ``size``."""
    from PIL import Image, ImageDraw

    s = 4  # draw at 4x then downsample: smooth edges, visible detail
    big = size * s
    bg = _jitter(rng, (200, 200, 195), 40)
    img = Image.new("RGB", (big, big), bg)
    mask = Image.new("L", (big, big), 0)
    m = ImageDraw.Draw(mask)
    scale = rng.uniform(0.82, 1.0) * big / 64
    cx = big / 2 + rng.uniform(-4, 4) * s
    top = big * 0.14 + rng.uniform(-3, 3) * s

    def X(v):
        return cx + v * scale

    def Y(v):
        return top + v * scale

    g = a["garment"]
    sleeve = a["sleeve"]
    neck_cut = None
    if g in ("tshirt", "shirt", "blouse", "jacket", "coat", "dress", "jumpsuit"):
        length = {"tshirt": 34, "shirt": 36, "blouse": 30, "jacket": 36, "coat": 48, "dress": 46, "jumpsuit": 46}[g]
        shoulder = 13 if a["neck"] != "off_shoulder" else 16
        waist = 10 if g in ("blouse", "dress", "jumpsuit") else 12
        hem = {"dress": 20, "coat": 15}.get(g, 12)
        if g == "jumpsuit":
            body = [
                (X(-shoulder), Y(4)),
                (X(shoulder), Y(4)),
                (X(waist), Y(22)),
                (X(13), Y(length)),
                (X(2), Y(length)),
                (X(0), Y(26)),
                (X(-2), Y(length)),
                (X(-13), Y(length)),
                (X(-waist), Y(22)),
            ]
        else:
            body = [
                (X(-shoulder), Y(4)),
                (X(shoulder), Y(4)),
                (X(waist), Y(20)),
                (X(hem), Y(length)),
                (X(-hem), Y(length)),
                (X(-waist), Y(20)),
            ]
        if a["neck"] == "off_shoulder":
            body = [(x, max(y, Y(7))) for x, y in body]
        m.polygon(body, fill=255)
        sy = Y(7) if a["neck"] == "off_shoulder" else Y(4)
        _draw_sleeves(m, sleeve, shoulder, sy, scale, X)
        neck_cut = a["neck"]
    elif g == "pants":
        m.polygon(
            [
                (X(-12), Y(6)),
                (X(12), Y(6)),
                (X(14), Y(50)),
                (X(4), Y(50)),
                (X(0), Y(18)),
                (X(-4), Y(50)),
                (X(-14), Y(50)),
            ],
            fill=255,
        )
    elif g == "shorts":
        m.polygon(
            [
                (X(-13), Y(14)),
                (X(13), Y(14)),
                (X(16), Y(34)),
                (X(4), Y(34)),
                (X(0), Y(24)),
                (X(-4), Y(34)),
                (X(-16), Y(34)),
            ],
            fill=255,
        )
    elif g == "skirt":
        m.polygon([(X(-10), Y(12)), (X(10), Y(12)), (X(20), Y(40)), (X(-20), Y(40))], fill=255)

    colour = _jitter(rng, COLOURS[a["colour"]][0])
    fabric = Image.new("RGB", (big, big), colour)
    _draw_pattern(ImageDraw.Draw(fabric), a["pattern"], colour, big, rng)
    img.paste(fabric, (0, 0), mask)
    d = ImageDraw.Draw(img)
    if g in ("jacket", "coat"):  # front opening and buttons make outerwear recognisable
        d.line([(X(0), Y(8)), (X(0), Y(34 if g == "jacket" else 46))], fill=(20, 20, 20), width=max(1, s))
        for k in range(3):
            yy = Y(14 + 8 * k)
            d.ellipse([X(2) - s, yy - s, X(2) + s, yy + s], fill=(235, 215, 60))
    if neck_cut == "crew":
        d.ellipse([X(-5), Y(0), X(5), Y(8)], fill=bg)
    elif neck_cut == "v":
        d.polygon([(X(-5), Y(3)), (X(5), Y(3)), (X(0), Y(15))], fill=bg)
    elif neck_cut == "collar":
        d.ellipse([X(-4), Y(1), X(4), Y(7)], fill=bg)
        d.polygon([(X(-5), Y(3)), (X(0), Y(6)), (X(-3), Y(11))], fill=(250, 250, 250))
        d.polygon([(X(5), Y(3)), (X(0), Y(6)), (X(3), Y(11))], fill=(250, 250, 250))
    arr = np.asarray(img.resize((size, size), Image.BILINEAR), dtype=np.float32)
    arr += rng.normal(0, 6, arr.shape)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def _draw_pattern(d, pattern: str, colour: tuple, big: int, rng: np.random.Generator) -> None:
    lum = sum(colour) / 3
    ink = (20, 20, 20) if lum > 140 else (245, 245, 245)
    step = int(big / 64 * rng.uniform(5.5, 7))
    off = int(rng.integers(0, step))
    w = max(2, step // 3)
    if pattern == "stripes":
        for y in range(off, big, step):
            d.rectangle([0, y, big, y + w], fill=ink)
    elif pattern == "dots":
        for y in range(off, big, step):
            for x in range(off + (step // 2 if (y // step) % 2 else 0), big, step):
                d.ellipse([x - w, y - w, x + w, y + w], fill=ink)
    elif pattern == "checks":
        for y in range(off, big, step * 2):
            d.rectangle([0, y, big, y + step - 1], fill=ink)
        for x in range(off, big, step * 2):
            d.rectangle([x, 0, x + w, big], fill=ink)
    elif pattern == "zigzag":
        for y in range(off, big, step * 2):
            pts = [(x, y + (step if (x // step) % 2 else 0)) for x in range(0, big + step, step)]
            d.line(pts, fill=ink, width=w)


def synth_garments(
    out: str | Path,
    n_train: int = 2000,
    n_val: int = 500,
    n_test: int = 500,
    image_size: int = 64,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> LabelTable:
    """Generate the demo table at ``out`` (which must not exist yet).

    Args:
        progress: called as ``progress(done, total)`` while drawing.
    """
    rng = np.random.default_rng(seed)
    total = n_train + n_val + n_test
    ids, labels, images = [], [], []
    for i in range(total):
        a = sample_attributes(rng)
        img = draw_garment(a, rng, image_size)
        buf = io.BytesIO()
        img.save(buf, format="PNG", optimize=False)
        ids.append(f"g{i:06d}")
        labels.append(attributes_to_labels(a))
        images.append(buf.getvalue())
        if progress and (i + 1) % 200 == 0:
            progress(i + 1, total)
    bounds = {"train": (0, n_train), "val": (n_train, n_train + n_val), "test": (n_train + n_val, total)}
    splits = {
        name: pa.table(
            {
                "id": pa.array(ids[a:b], pa.string()),
                "labels": pa.array(labels[a:b], pa.list_(pa.string())),
                "image": pa.array(images[a:b], pa.binary()),
            }
        )
        for name, (a, b) in bounds.items()
    }
    manifest = Manifest(
        name="synthetic-garments",
        input="image",
        source=f"tailsweep.datasets.synth_garments(seed={seed})",
        licence="generated; CC0",
        extra={"image_size": image_size, "seed": seed, "generator": "tailsweep synth v1"},
    )
    return write_table(out, manifest, label_rows(), splits)
