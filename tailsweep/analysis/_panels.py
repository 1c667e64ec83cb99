"""The report's small-multiples: one panel per setting or scheme, three to a row."""

from __future__ import annotations

import math

COLUMNS = 3


def panels(n: int, width: float, height: float, **subplots):
    """(figure, axes (rows x cols), the ``n`` axes in use): a grid of ``n`` panels of ``width`` x ``height``
    inches, the unused ones switched off."""
    import matplotlib.pyplot as plt

    cols = min(COLUMNS, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False, **subplots)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    return fig, axes, list(axes.ravel()[:n])


def finish(fig, path, y_label: str | None = None, axes=None, title: str | None = None, **layout) -> None:
    """Label the first column, title, lay out, save at the report's resolution, close."""
    import matplotlib.pyplot as plt

    if y_label and axes is not None:
        for ax in axes[:, 0]:
            ax.set_ylabel(y_label)
    if title:
        fig.suptitle(title)
    fig.tight_layout(**layout)
    fig.savefig(path, dpi=110)
    plt.close(fig)
