"""Render the dashboard's charts (installer/product.py CHARTS) to an image, from the local demo data, for people
who would rather look than read:

    python -m installer.render [docs/dashboard.png]

The data is local mode's demo account (standins.dataverse.demo.seed_demo) with two months of generated history
(seed_history); each chart's own FetchXML runs through the stand-in's Web API (`GET <entityset>?fetchXml=...`), the
way Dynamics runs it for the dashboard. matplotlib is a development dependency (requirements-dev.txt).
"""
from __future__ import annotations

import datetime as dt
import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

from core import footprint
from installer import product

ROOT = Path(__file__).resolve().parent.parent
AS_OF = dt.datetime(2026, 11, 21, 9, 0, tzinfo=dt.timezone.utc)        # fixed, so the picture does not drift
URL = "https://demo.crm.dynamics.com/api/data/v9.2/"


class _Clock:
    def now(self) -> dt.datetime:
        return AS_OF


def chart_data() -> dict[str, list[dict[str, Any]]]:
    """Each chart's rows, by chart name, as the stand-in's Web API answers its FetchXML."""
    from standins.dataverse import DataverseStandIn
    from standins.dataverse.demo import seed_demo, seed_history

    standin = DataverseStandIn(clock=_Clock())
    seed_history(standin, seed_demo(standin))
    found = {}
    for chart in product.CHARTS:
        url = f"{URL}{footprint.entity_set(chart.table)}?fetchXml={quote(chart.fetch_xml)}"
        status, _, body = standin.handle("GET", url, {}, None)
        if status != 200:
            raise RuntimeError(f"{chart.name}: HTTP {status} {body[:300]!r}")
        found[chart.name] = json.loads(body, parse_float=Decimal)["value"]
    return found


def _label(table: str, column: str, value: int) -> str:
    return footprint.label(table, column, value)


def render(path: Path) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = chart_data()
    by_name = {c.name: c for c in product.CHARTS}
    figure, axes = plt.subplots(3, 2, figsize=(13, 12))
    figure.suptitle(f"{product.DASHBOARD_NAME} dashboard (local demo data, as of {AS_OF:%Y-%m-%d})", fontsize=14)
    blue, orange, green, grey = "#0078d4", "#d83b01", "#107c10", "#8a8886"

    ax = axes[0][0]
    rows = data["Collected per Day"]
    days = [dt.date(r["year"], r["month"], r["day"]) for r in rows]
    ax.bar(days, [float(r["collected"]) for r in rows], color=blue)
    ax.set_title(by_name["Collected per Day"].name, fontsize=11)
    ax.set_ylabel("USD")
    ax.tick_params(axis="x", rotation=45, labelsize=8)

    ax = axes[0][1]
    rows = sorted(data["Failures by Reason"], key=lambda r: r["failures"])
    ax.barh([f"reason {r['reason']}" for r in rows], [r["failures"] for r in rows], color=orange)
    ax.set_title(by_name["Failures by Reason"].name, fontsize=11)
    ax.set_xlabel("attempts")

    ax = axes[1][0]
    order = ("Retrying", "Awaiting Card", "Exhausted", "Needs Review", "Recovered")
    counts = {_label("invoice", "w365_dunningstatus", r["status"]): r["invoices"] for r in data["Dunning Funnel"]}
    widths = [counts.get(s, 0) for s in order]
    ax.barh(list(reversed(order)), list(reversed(widths)), left=[-(w / 2) for w in reversed(widths)],
            color=[green, grey, orange, grey, blue])
    for y, w in enumerate(reversed(widths)):
        ax.text(0, y, str(w), ha="center", va="center", color="white", fontweight="bold")
    ax.set_xticks([])
    ax.set_title(by_name["Dunning Funnel"].name, fontsize=11)

    ax = axes[1][1]
    rows = data["Recovery per Month"]
    months = [f"{r['year']}-{r['month']:02d}" for r in rows]
    x = range(len(rows))
    ax.bar([i - 0.2 for i in x], [float(r["failed"]) for r in rows], width=0.4, color=orange, label="failed")
    ax.bar([i + 0.2 for i in x], [float(r["recovered"]) for r in rows], width=0.4, color=green, label="recovered")
    ax.set_xticks(list(x), months)
    ax.set_ylabel("USD")
    rate = ax.twinx()
    rate.plot(list(x), [100 * float(r["recovered"]) / float(r["failed"]) if r["failed"] else 0 for r in rows],
              color=blue, marker="o", label="recovery rate")
    rate.set_ylabel("recovery rate %")
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title(by_name["Recovery per Month"].name, fontsize=11)

    ax = axes[2][0]
    rows = data["Open Attempts"]
    ax.pie([r["attempts"] for r in rows], autopct=lambda p: f"{p:.0f}%",
           labels=[f"{_label('w365_paymenttransaction', 'w365_outcome', r['outcome'])} "
                   f"({r['attempts']}, {r['amount']} USD)" for r in rows], colors=[grey, orange, blue])
    ax.set_title(by_name["Open Attempts"].name, fontsize=11)
    axes[2][1].axis("off")
    axes[2][1].text(0, 0.5, "Each chart is the FetchXML of installer/product.py\nrun by the Dataverse stand-in's "
                            "Web API\n(GET <entityset>?fetchXml=...).", fontsize=10, color=grey)
    figure.tight_layout(rect=(0, 0, 1, 0.96))
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "dashboard.png"
    print(f"Wrote {render(target)}")
