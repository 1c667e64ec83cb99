"""Shared by the benchmarks: write a measured section into docs/benchmarks.md between its markers."""

from __future__ import annotations

from pathlib import Path


def update_section(out: str | Path, begin: str, end: str, heading: str, text: str) -> None:
    """Replace the text between ``begin`` and ``end`` in ``out`` (``text`` carries both markers), or append it
    under ``heading`` when the markers are not there yet."""
    out = Path(out)
    doc = out.read_text() if out.exists() else ""
    if begin in doc:
        doc = doc[: doc.index(begin)] + text + doc[doc.index(end) + len(end) :]
    else:
        doc += f"\n## {heading}\n\n{text}\n"
    out.write_text(doc)
    print(f"updated {out}")


def load_note(load: float, cores: int = 2) -> str:
    """How busy the machine was, in the words a reader needs: a busy machine inflates wall times."""
    if load < cores:
        return f"1-minute load average up to {load:.1f} on {cores} cores: the machine was otherwise idle"
    return f"1-minute load average up to {load:.1f} on {cores} cores: other jobs shared the machine, so wall times are inflated"
