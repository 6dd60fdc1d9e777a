"""``report.md``: the convert result as a table, like ``yolo benchmark`` prints it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edgekit.manifest import Report, ReportRow

COLUMNS = ("Target", "Status", "Size (MB)", "Parity", "p50 / p95 ms (batch 1)", "Convert (s)", "Notes")


def parity_cell(row: ReportRow) -> str:
    p = row.parity
    if p is None or p.mean is None:
        return "-"
    if p.metric == "cosine":
        text = f"cos {p.mean:.4f} / min {p.min:.4f}"
    elif p.metric == "top1":
        text = f"top-1 {p.mean:.3f}"
    else:
        text = f"rel-err {p.mean:.2g} / max {p.max:.2g}"
    return text + ("" if p.passed else " ✗")


def latency_cell(row: ReportRow) -> str:
    lat = row.latency_ms
    if lat is None:
        return "-"
    extra = f", {lat.precision}" if lat.precision else ""
    return f"{lat.p50:.2f} / {lat.p95:.2f}{extra}"


def notes_cell(row: ReportRow) -> str:
    parts = []
    if row.error:
        parts.append(row.error["message"])
    parts.extend(row.notes)
    return "; ".join(parts).replace("|", "\\|").replace("\n", " ") or ""


def render(report: Report, context: Mapping[str, Any]) -> str:
    lines = [f"# edgekit convert: {report.model} for {report.profile}", ""]
    for key, value in context.items():
        lines.append(f"- **{key}**: {value}")
    lines += ["", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in report.rows:
        size = f"{row.size_bytes / 1e6:.1f}" if row.size_bytes is not None else "-"
        conv = f"{row.conversion_s:.1f}" if row.conversion_s is not None else "-"
        lines.append(f"| {row.target} | {row.status} | {size} | {parity_cell(row)} | {latency_cell(row)} | "
                     f"{conv} | {notes_cell(row)} |")
    failed = report.failed
    lines += ["", f"{len(report.rows) - len(failed)} of {len(report.rows)} target(s) built; "
              f"{len(failed)} failed." if failed else f"All {len(report.rows)} target(s) built.", ""]
    return "\n".join(lines)
