"""Run third-party conversion tools tidily: inside a scratch directory, with their chatter kept off the console.

Several tools write beside the current directory or into the system temp dir (ONNX Runtime's pre-processing left
~90 MB there), print progress bars, or warn through the root logger. ``tool_scope(work)`` points cwd and
``tempfile`` at ``work`` (which the orchestrator deletes) and silences them unless edgekit runs with --debug.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

NOISY_LOGGERS = ("", "nncf", "onnxruntime", "torch", "torch.onnx", "transformers", "openvino", "onnxscript")


@contextlib.contextmanager
def tool_scope(work: Path, *, quiet: bool | None = None) -> Iterator[Path]:
    work.mkdir(parents=True, exist_ok=True)
    if quiet is None:
        quiet = not logging.getLogger("edgekit").isEnabledFor(logging.DEBUG)
    old_cwd, old_tmp, old_env = Path.cwd(), tempfile.tempdir, os.environ.get("TMPDIR")
    levels = {name: logging.getLogger(name).level for name in NOISY_LOGGERS}
    os.chdir(work)
    tempfile.tempdir = str(work)
    os.environ["TMPDIR"] = str(work)
    sink = io.StringIO()
    try:
        with contextlib.ExitStack() as stack:
            if quiet:
                for name in NOISY_LOGGERS:
                    logging.getLogger(name).setLevel(logging.ERROR)
                stack.enter_context(warnings.catch_warnings())
                warnings.simplefilter("ignore")
                stack.enter_context(contextlib.redirect_stdout(sink))
                stack.enter_context(contextlib.redirect_stderr(sink))
            yield work
    finally:
        os.chdir(old_cwd)
        tempfile.tempdir = old_tmp
        if old_env is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = old_env
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


_CPP_FRAME = re.compile(r"/onnxruntime_src/\S+:\d+ [^(]*\((?:[^()]|\([^()]*\))*\)\s*")


def one_line(err: BaseException, limit: int = 300) -> str:
    """An exception as one readable line: tools raise multi-line C++ messages whose useful part is often last,
    so C++ source locations are dropped and a long text keeps its head and its tail."""
    text = " ".join(_CPP_FRAME.sub("", str(err)).split()) or type(err).__name__
    if len(text) <= limit:
        return text
    head = limit // 3
    return f"{text[:head]} ... {text[-(limit - head - 5):]}"
