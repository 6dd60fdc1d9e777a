"""Fleet telemetry consumers: ``watch`` (live table), ``record`` (SQLite), ``plot`` (PNG charts + summary.md).

Modules: ``store`` (the SQLite recording), ``record`` (broker -> store), ``fleet`` (latest message per device),
``render`` (the watch table, a pure function), ``watch`` (the live loop), ``plot`` and ``summary`` (reports),
``synthetic`` (a stand-in device for tests and benchmarks), ``schemadoc`` (docs/telemetry.md field tables).
"""
