"""Which operators a ``.tflite`` file needs, read straight from its flatbuffer (``Model.operator_codes``).

A file that needs ``Flex*`` ops (TensorFlow kernels) or other custom ops does not run on a stock LiteRT
interpreter: that must fail the conversion, naming the ops, rather than surface on a phone. The reader is a few
lines of flatbuffer arithmetic so it needs nothing installed; op names come from LiteRT's schema when present.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from edgekit.errors import ConversionError

CUSTOM = 32  # BuiltinOperator.CUSTOM
_MODEL_OPERATOR_CODES = 1  # Model table field index
_OPCODE_DEPRECATED_BUILTIN, _OPCODE_CUSTOM, _OPCODE_VERSION, _OPCODE_BUILTIN = 0, 1, 2, 3


@dataclass(frozen=True)
class OpCode:
    builtin: int
    custom: str | None
    version: int

    @property
    def name(self) -> str:
        if self.builtin == CUSTOM:
            return self.custom or "CUSTOM"
        return builtin_names().get(self.builtin, f"BUILTIN_{self.builtin}")

    @property
    def is_flex(self) -> bool:
        return self.builtin == CUSTOM and (self.custom or "").startswith("Flex")


def builtin_names() -> dict[int, str]:
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:
        return {}
    ops = schema.BuiltinOperator
    return {v: k for k, v in vars(ops).items() if k.isupper() and isinstance(v, int)}


class _Reader:
    def __init__(self, buf: bytes) -> None:
        self.buf = buf

    def u32(self, pos: int) -> int:
        return int(struct.unpack_from("<I", self.buf, pos)[0])

    def field(self, table: int, index: int) -> int | None:
        """Absolute position of field ``index`` of the table at ``table``, or None when absent."""
        vtable = table - struct.unpack_from("<i", self.buf, table)[0]
        vsize = struct.unpack_from("<H", self.buf, vtable)[0]
        slot = 4 + 2 * index
        if slot >= vsize:
            return None
        off = struct.unpack_from("<H", self.buf, vtable + slot)[0]
        return table + off if off else None

    def deref(self, pos: int) -> int:
        return pos + self.u32(pos)

    def vector(self, pos: int) -> tuple[int, int]:
        start = self.deref(pos)
        return start + 4, self.u32(start)

    def string(self, pos: int) -> str:
        start, n = self.vector(pos)
        return self.buf[start:start + n].decode("utf-8", "replace")


def read_operator_codes(path: Path) -> list[OpCode]:
    """Every operator code in the model (builtin id, custom name, version)."""
    buf = path.read_bytes()
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise ConversionError(f"{path} is not a TFLite flatbuffer (missing the 'TFL3' identifier)")
    r = _Reader(buf)
    try:
        root = r.deref(0)
        codes_field = r.field(root, _MODEL_OPERATOR_CODES)
        if codes_field is None:
            return []
        start, count = r.vector(codes_field)
        out = []
        for i in range(count):
            table = r.deref(start + 4 * i)
            dep = r.field(table, _OPCODE_DEPRECATED_BUILTIN)
            new = r.field(table, _OPCODE_BUILTIN)
            custom = r.field(table, _OPCODE_CUSTOM)
            version = r.field(table, _OPCODE_VERSION)
            code = max(struct.unpack_from("<b", buf, dep)[0] if dep else 0,
                       struct.unpack_from("<i", buf, new)[0] if new else 0)
            out.append(OpCode(code, r.string(custom) if custom else None,
                              struct.unpack_from("<i", buf, version)[0] if version else 1))
        return out
    except struct.error as err:
        raise ConversionError(f"{path} is a truncated or corrupt TFLite flatbuffer: {err}") from err


def check_builtin_only(path: Path) -> list[str]:
    """The sorted builtin op names of ``path``; ConversionError naming every Flex/custom op when there is one."""
    codes = read_operator_codes(path)
    bad = sorted({c.name for c in codes if c.builtin == CUSTOM})
    if bad:
        flex = [b for b in bad if b.startswith("Flex")]
        why = ("Flex ops need the TensorFlow Flex delegate, which stock LiteRT and mobile apps do not ship"
               if flex else "custom ops need a kernel registered by the app")
        raise ConversionError(f"{path.name} needs non-builtin op(s) {', '.join(bad)}: {why}. Rewrite the model "
                              "so these ops lower to builtins (e.g. express Erf/GELU with tanh), or use another target")
    return sorted({c.name for c in codes})
