"""Sample inputs: parity samples, calibration data and the latency input, built from the model's input spec.

- text models: the built-in sentences (``converters.sentences``), tokenized one per sample, plus padded batches
  that exercise the attention mask and the dynamic batch axis;
- other models: ``--calibration`` data when given, else seeded random tensors shaped by the input spec and
  ``--input-shape`` (plus one batch of several when the batch axis is dynamic).
Parity samples and reference outputs are stored with the artifacts (``parity-samples.npz``) so ``edgekit verify``
can re-run the gate later without the source model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from converters.base import SourceModel
from converters.sentences import builtin_sentences
from edgekit.errors import SourceError, UsageError
from edgekit.manifest import TensorSpec

Feeds = dict[str, np.ndarray]
SAMPLES_NAME = "parity-samples.npz"
RANDOM_SAMPLES = 32
MAX_SAMPLE_BYTES = 64 << 20  # cap on the stored parity inputs for big inputs (e.g. 640x640 images)
TEXT_BATCH = 8
LATENCY_SEQ = 128
BATCH_AXIS_NAMES = ("batch", "batch_size", "n", "N", "unk__0")


@dataclass
class SampleSet:
    parity: list[Feeds]
    calibration: list[Feeds] | None
    latency: Feeds  # batch 1
    description: str
    latency_seq: int | None = None


class TextEncoder:
    """Tokenize sentences into the model's inputs with the tokenizer shipped beside it (``tokenizer.json``)."""

    def __init__(self, source: SourceModel) -> None:
        from tokenizers import Tokenizer

        tok_file = next((f for f in source.tokenizer_files if f.name == "tokenizer.json"), None)
        if tok_file is None:
            raise SourceError(f"{source.name} is a text model without tokenizer.json; cannot build text samples")
        text = dict(source.metadata.get("text", {}))
        self.max_length = int(text.get("max_length", 512))
        self.pad_id = int(text.get("pad_id", 0))
        self.tokenizer = Tokenizer.from_file(str(tok_file))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(self.max_length)
        self.input_names = [i.name for i in source.inputs]

    def encode(self, sentences: Sequence[str], pad_to: int | None = None) -> Feeds:
        encs = self.tokenizer.encode_batch(list(sentences))
        width = pad_to or max(len(e.ids) for e in encs)
        ids = np.full((len(encs), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(encs), width), dtype=np.int64)
        for row, e in enumerate(encs):
            n = min(len(e.ids), width)
            ids[row, :n] = e.ids[:n]
            mask[row, :n] = 1
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        return {name: feeds[name] for name in self.input_names if name in feeds}


def text_samples(source: SourceModel, calibration: Path | None) -> SampleSet:
    enc = TextEncoder(source)
    sentences = builtin_sentences()
    parity = [enc.encode([s]) for s in sentences]
    # Padded batches: mixed lengths in one batch check the mask and the dynamic batch axis.
    for start in (0, len(sentences) // 2):
        parity.append(enc.encode(sentences[start:start + TEXT_BATCH]))
    calib = None
    if calibration is not None:
        if calibration.suffix == ".npz":
            calib = load_npz_calibration(calibration, source.inputs)
        else:
            lines = [ln.strip() for ln in calibration.read_text(encoding="utf-8").splitlines() if ln.strip()]
            if not lines:
                raise UsageError(f"--calibration {calibration} has no sentences (one per line expected)")
            calib = [enc.encode([s]) for s in lines]
    long_text = " ".join(sentences[-10:]) * 4
    seq = min(LATENCY_SEQ, enc.max_length)
    latency = enc.encode([long_text], pad_to=seq)
    return SampleSet(parity, calib, latency, f"{len(sentences)} built-in sentences + 2 padded batches of "
                     f"{TEXT_BATCH}", latency_seq=seq)


def concrete_shape(spec: TensorSpec, fixed: Mapping[str, tuple[int, ...]], batch: int = 1) -> tuple[int, ...]:
    """The shape samples use: ``--input-shape`` if given, else static dims, batch-like dynamic dims = ``batch``."""
    if spec.name in fixed:
        shape = tuple(fixed[spec.name])
        return (batch, *shape[1:]) if batch != 1 and isinstance(spec.shape[0], str) else shape
    dims = []
    for i, d in enumerate(spec.shape):
        if isinstance(d, int) and d > 0:
            dims.append(d)
        elif i == 0:
            dims.append(batch)
        else:
            example = ",".join(str(x if isinstance(x, int) else 1) for x in spec.shape)
            raise UsageError(f"input {spec.name!r} has a dynamic dimension {i} ({d!r}) edgekit cannot guess; "
                             f"fix it with --input-shape {spec.name}:{example} (adjusting the dims)")
    return tuple(dims)


def random_feeds(inputs: Sequence[TensorSpec], fixed: Mapping[str, tuple[int, ...]], rng: np.random.Generator,
                 batch: int = 1) -> Feeds:
    feeds: Feeds = {}
    for spec in inputs:
        shape = concrete_shape(spec, fixed, batch)
        if spec.dtype.startswith("float"):
            feeds[spec.name] = rng.standard_normal(shape).astype(spec.dtype)
        elif spec.dtype == "bool":
            feeds[spec.name] = rng.integers(0, 2, shape).astype(bool)
        else:
            feeds[spec.name] = rng.integers(0, 10, shape).astype(spec.dtype)
    return feeds


def load_npz_calibration(path: Path, inputs: Sequence[TensorSpec]) -> list[Feeds]:
    """A .npz with one array per input name; axis 0 indexes samples, each becomes a batch-1 feed."""
    try:
        data = np.load(path)
    except (OSError, ValueError) as err:
        raise UsageError(f"--calibration {path} is not a readable .npz file: {err}") from err
    names = [i.name for i in inputs]
    missing = [n for n in names if n not in data.files]
    if missing:
        raise UsageError(f"--calibration {path} lacks arrays for inputs {missing}; it has {data.files}; "
                         "save one array per model input, samples along axis 0")
    counts = {len(data[n]) for n in names}
    if len(counts) != 1:
        raise UsageError(f"--calibration {path}: arrays have different sample counts {sorted(counts)}")
    n = counts.pop()
    return [{name: np.ascontiguousarray(data[name][i:i + 1]) for name in names} for i in range(n)]


def tensor_samples(source: SourceModel, calibration: Path | None, seed: int = 0) -> SampleSet:
    rng = np.random.default_rng(seed)
    calib = None
    if calibration is not None:
        if calibration.suffix != ".npz":
            raise UsageError(f"--calibration {calibration}: a non-text model takes a .npz of input tensors")
        calib = load_npz_calibration(calibration, source.inputs)
    if calib:
        parity, how = calib[:64], f"{min(len(calib), 64)} calibration samples"
    else:
        one = random_feeds(source.inputs, source.fixed_shapes, rng)
        per_sample = sum(a.nbytes for a in one.values())
        count = int(max(4, min(RANDOM_SAMPLES, MAX_SAMPLE_BYTES // max(per_sample, 1))))
        parity = [one] + [random_feeds(source.inputs, source.fixed_shapes, rng) for _ in range(count - 1)]
        how = f"{count} seeded random samples (seed {seed})"
    batchable = all(isinstance(s.shape[0], str) for s in source.inputs if s.shape) and all(
        s.name not in source.fixed_shapes for s in source.inputs)
    if batchable:
        parity.append(random_feeds(source.inputs, source.fixed_shapes, rng, batch=4))
        how += " + 1 batch of 4"
    return SampleSet(parity, calib, dict(parity[0]), how)


def build_samples(source: SourceModel, calibration: Path | None = None) -> SampleSet:
    if calibration is not None and not calibration.is_file():
        raise UsageError(f"--calibration {calibration} does not exist")
    if source.task in ("text-embedding", "feature-extraction") and source.tokenizer_files:
        return text_samples(source, calibration)
    return tensor_samples(source, calibration)


def save_samples(path: Path, samples: Sequence[Feeds], reference: Sequence[dict[str, np.ndarray]]) -> None:
    arrays: dict[str, Any] = {}
    for i, (feeds, ref) in enumerate(zip(samples, reference, strict=True)):
        arrays.update({f"in/{i}/{k}": v for k, v in feeds.items()})
        arrays.update({f"ref/{i}/{k}": v for k, v in ref.items()})
    np.savez_compressed(path, **arrays)


def load_samples(path: Path) -> tuple[list[Feeds], list[dict[str, np.ndarray]]]:
    data = np.load(path)
    samples: dict[int, Feeds] = {}
    refs: dict[int, dict[str, np.ndarray]] = {}
    for key in data.files:
        kind, idx, name = key.split("/", 2)
        (samples if kind == "in" else refs).setdefault(int(idx), {})[name] = data[key]
    order = sorted(samples)
    return [samples[i] for i in order], [refs[i] for i in order]
