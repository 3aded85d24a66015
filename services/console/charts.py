"""Charts for the operators, drawn with matplotlib's Agg backend (no display needed)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

# Every third day is labelled: 30 labels would overlap.
LABEL_EVERY = 3


@dataclass(frozen=True)
class DayCount:
    day: date
    made: int
    changed: int


def links_per_day_png(
    days: Sequence[DayCount], *, title: str, made_label: str, changed_label: str
) -> bytes:
    """Stacked bars of links made and changed per day. CPU-bound: run it in a thread."""
    # Imported here: matplotlib takes a second to import and only /stats needs it.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(9, 3.8), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots()
    positions = list(range(len(days)))
    made = [day.made for day in days]
    axes.bar(positions, made, width=0.8, color="#2e7d32", label=made_label)
    axes.bar(
        positions,
        [day.changed for day in days],
        width=0.8,
        bottom=made,
        color="#f9a825",
        label=changed_label,
    )
    # Labelled from the newest day back, so today always has its label.
    labelled = positions[::-1][::LABEL_EVERY]
    axes.set_xticks(labelled, [days[index].day.strftime("%d.%m") for index in labelled])
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    peak = max((day.made + day.changed for day in days), default=0)
    axes.set_ylim(0, max(peak, 1) * 1.15)  # room above the tallest bar; an empty month reads 0
    axes.set_title(title)
    axes.grid(axis="y", alpha=0.3)
    # Under the axis, so it never covers a bar.
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncols=2, frameon=False)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
