"""The rich progress display and summary table of ``edgekit convert`` (progress on stderr, table on stdout)."""

from __future__ import annotations

from typing import IO, Any

from converters.pipeline import ConvertResult, Events
from converters.report_md import latency_cell, parity_cell
from edgekit.manifest import ReportRow

STATUS_STYLE = {"ok": "green", "converted-not-run": "yellow", "failed": "bold red"}


class RichEvents(Events):
    """A spinner per stage and per target, and one line per finished target."""

    def __init__(self, enabled: bool = True) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.console = Console(stderr=True, soft_wrap=True)
        self.enabled = enabled
        # The live spinner only on a terminal; logs and CI get the one line per finished target.
        self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(bar_width=20),
                                 MofNCompleteColumn(), TimeElapsedColumn(), console=self.console, transient=True,
                                 disable=not (enabled and self.console.is_terminal))
        self.task: Any = None
        self.current = ""

    def __enter__(self) -> RichEvents:
        self.progress.start()
        self.task = self.progress.add_task("starting", total=None)
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def stage(self, message: str) -> None:
        self.progress.update(self.task, description=message)

    def target_started(self, target: str, index: int, total: int) -> None:
        self.current = target
        self.progress.update(self.task, description=f"[bold]{target}[/bold]", completed=index, total=total)

    def target_progress(self, target: str, message: str) -> None:
        self.progress.update(self.task, description=f"[bold]{target}[/bold]: {message}")

    def target_finished(self, row: ReportRow) -> None:
        self.progress.advance(self.task)
        if not self.enabled:
            return
        style = STATUS_STYLE.get(row.status, "")
        detail = row.error["message"] if row.error else parity_cell(row)
        took = f" ({row.conversion_s:.1f} s)" if row.conversion_s is not None else ""
        self.console.print(f"[{style}]{row.status:>17}[/{style}]  {row.target}{took}  {detail}", highlight=False)


def print_summary(result: ConvertResult, file: IO[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{result.report.model} for {result.report.profile}  ->  {result.out_dir}")
    for col in ("target", "status", "size MB", "parity", "p50 / p95 ms (b1)", "convert s", "notes"):
        table.add_column(col, overflow="fold")
    for row in result.report.rows:
        notes = "; ".join([*([row.error["message"]] if row.error else []), *row.notes])
        style = STATUS_STYLE.get(row.status, "")
        table.add_row(row.target, f"[{style}]{row.status}[/{style}]",
                      f"{row.size_bytes / 1e6:.1f}" if row.size_bytes is not None else "-", parity_cell(row),
                      latency_cell(row), f"{row.conversion_s:.1f}" if row.conversion_s is not None else "-", notes)
    Console(file=file, width=160).print(table)
