"""The field tables of docs/telemetry.md, generated from the JSON Schemas so the two cannot drift apart.

    python -m edgekit.telemetry.schemadoc docs/telemetry.md           # rewrite the generated tables
    python -m edgekit.telemetry.schemadoc docs/telemetry.md --check   # exit 1 when they are stale

A generated table sits between ``<!-- fields: SCHEMA -->`` and ``<!-- end fields -->``.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

from edgekit.manifest import load_schema

BLOCK = re.compile(r"(<!-- fields: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- end fields -->)", re.S)


def _type(spec: dict[str, Any]) -> str:
    if "$ref" in spec:
        return spec["$ref"].rsplit("/", 1)[-1]
    if "const" in spec:
        return f"`{spec['const']!r}`".replace("'", '"')
    if "enum" in spec:
        return " \\| ".join(f'`"{v}"`' for v in spec["enum"])
    if "oneOf" in spec:
        return " or ".join(_type(s) for s in spec["oneOf"])
    t = spec.get("type", "any")
    if isinstance(t, list):
        return " or ".join(t)
    if t == "array" and isinstance(spec.get("items"), dict):
        return f"array of {_type(spec['items'])}"
    if t == "object" and isinstance(spec.get("additionalProperties"), dict):
        return f"object of {_type(spec['additionalProperties'])}"
    return str(t)


def _notes(spec: dict[str, Any]) -> str:
    notes = []
    if spec.get("description"):
        notes.append(spec["description"])
    for key, word in (("minimum", "≥"), ("minLength", "length ≥"), ("maxLength", "length ≤"), ("minItems",
                                                                                                 "items ≥"),
                      ("minProperties", "entries ≥")):
        if key in spec:
            notes.append(f"{word} {spec[key]}")
    return "; ".join(notes).replace("|", "\\|")


def _rows(props: dict[str, Any], required: list[str], prefix: str = "") -> list[str]:
    rows = []
    for name, spec in props.items():
        path = f"{prefix}{name}"
        rows.append(f"| `{path}` | {_type(spec)} | {'yes' if name in required else ''} | {_notes(spec)} |")
        if isinstance(spec.get("properties"), dict):
            rows += _rows(spec["properties"], spec.get("required", []), f"{path}.")
    return rows


def fields_table(schema_name: str) -> str:
    schema = load_schema(schema_name)
    lines = ["| field | type | required | notes |", "|---|---|---|---|"]
    lines += _rows(schema.get("properties", {}), schema.get("required", []))
    one_of = [s.get("required") for s in schema.get("oneOf", []) if s.get("required")]
    if one_of:
        lines.append("")
        lines.append("Exactly one of: " + ", ".join(" + ".join(f"`{f}`" for f in req) for req in one_of) + ".")
    if schema.get("additionalProperties") is False:
        lines.append("")
        lines.append("No other fields are allowed.")
    return "\n".join(lines) + "\n"


def refresh(text: str) -> str:
    return BLOCK.sub(lambda m: m.group(1) + fields_table(m.group("name")) + m.group(4), text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("doc", type=Path)
    parser.add_argument("--check", action="store_true", help="only check; exit 1 when the tables are stale")
    args = parser.parse_args(argv)
    text = args.doc.read_text(encoding="utf-8")
    new = refresh(text)
    if args.check:
        if new != text:
            print(f"{args.doc}: the field tables are stale; run: python -m edgekit.telemetry.schemadoc {args.doc}")
            return 1
        return 0
    args.doc.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
