"""``INTEGRATION.md`` for app bundles: the few lines an Android or iOS developer pastes to load and run the model."""

from __future__ import annotations

from edgekit.manifest import Artifact, Manifest


def _io_table(manifest: Manifest, artifact: Artifact) -> str:
    dtypes = artifact.details.get("input_dtypes", {})
    shapes = artifact.details.get("input_shapes") or artifact.details.get("shapes") or {}
    rows = ["| tensor | dtype | shape |", "| --- | --- | --- |"]
    for i in manifest.model.inputs:
        rows.append(f"| input `{i.name}` | {dtypes.get(i.name, i.dtype)} | {shapes.get(i.name, list(i.shape))} |")
    for o in manifest.model.outputs:
        rows.append(f"| output `{o.name}` | float32 | {list(o.shape)} |")
    return "\n".join(rows)


def android(manifest: Manifest, artifact: Artifact, tokenizer: str | None) -> str:
    buckets = artifact.details.get("buckets") or []
    first = buckets[0]["path"] if buckets else artifact.path
    seq_note = ""
    if buckets:
        lengths = ", ".join(str(b["sequence"]) for b in buckets)
        seq_note = (f"\nThe model ships one file per sequence length ({lengths}); pick the smallest that fits the "
                    "tokenized input, pad `input_ids` and `attention_mask` with 0 to that length (padding is masked "
                    "out, so results are identical), and read the output.\n")
    inputs = ", ".join(f'"{i.name}" to {i.name}' for i in manifest.model.inputs)
    out = manifest.model.outputs[0].name
    return f"""# Android integration: {manifest.model.name} ({artifact.target})

Copy this bundle into `app/src/main/assets/edgekit/`. LiteRT memory-maps models straight from the APK, so
`.tflite` files must stay uncompressed:

```groovy
// app/build.gradle
android {{
    androidResources {{ noCompress += "tflite" }}   // AGP < 8: aaptOptions {{ noCompress "tflite" }}
}}
dependencies {{
    // LiteRT >= {_litert(artifact)} (manifest.json min_runtime)
    implementation "com.google.ai.edge.litert:litert:2.+"
}}
```

Inputs and outputs ({artifact.details.get("quantization", {}).get("mode") or artifact.precision}):

{_io_table(manifest, artifact)}
{seq_note}
```kotlin
import org.tensorflow.lite.Interpreter
import org.tensorflow.lite.support.common.FileUtil

val model = FileUtil.loadMappedFile(context, "edgekit/{first}")
val interpreter = Interpreter(model, Interpreter.Options().apply {{ numThreads = 4 }})
val runner = interpreter.getSignatureRunner("serving_default")
{_kotlin_inputs(manifest, artifact)}
val outputs = mapOf("{out}" to Array(1) {{ FloatArray({_last_dim(manifest)}) }})
runner.run(mapOf({inputs}), outputs)
```

{_tokenizer_line(tokenizer)}
NNAPI is deprecated since Android 15: use the GPU delegate or the default XNNPACK CPU path.
Every file's SHA-256 is in `manifest.json` (and `CHECKSUMS.sha256`); `edgekit verify` checks them.
"""


def _tokenizer_line(tokenizer: str | None) -> str:
    if not tokenizer:
        return ""
    return f"Tokenizer: `{tokenizer}` (Hugging Face tokenizer.json: the same vocabulary on device)."


def _litert(artifact: Artifact) -> str:
    spec = str(artifact.details.get("min_runtime", {}).get("ai-edge-litert", ">=2.3.0"))
    return spec.lstrip(">=")


def _last_dim(manifest: Manifest) -> str:
    dim = manifest.model.outputs[0].shape[-1]
    return str(dim) if isinstance(dim, int) else "N"


def _kotlin_inputs(manifest: Manifest, artifact: Artifact) -> str:
    lines = []
    dtypes = artifact.details.get("input_dtypes", {})
    for i in manifest.model.inputs:
        kind = "IntArray" if dtypes.get(i.name, i.dtype).startswith("int") else "FloatArray"
        lines.append(f"val {i.name} = arrayOf({kind}(/* one row, padded to the bucket length */))")
    return "\n".join(lines)


def ios(manifest: Manifest, artifact: Artifact, tokenizer: str | None) -> str:
    name = artifact.path.rsplit("/", 1)[-1].removesuffix(".mlpackage")
    cls = "".join(part.capitalize() for part in name.replace("-", "_").split("_"))
    shapes = artifact.details.get("shapes", {})
    feed = ", ".join(f"{i.name}: {i.name}" for i in manifest.model.inputs)
    arrays = "\n".join(
        f"let {i.name} = try MLMultiArray(shape: {shapes.get(i.name, list(i.shape))}, dataType: "
        f"{'.int32' if artifact.details.get('input_dtypes', {}).get(i.name, '').startswith('int') else '.float32'})"
        for i in manifest.model.inputs)
    out = manifest.model.outputs[0].name
    return f"""# iOS integration: {manifest.model.name} ({artifact.target})

1. Drag `{artifact.path}` into your Xcode target (Copy items if needed). Xcode compiles it to `.mlmodelc` at build
   time (`xcrun coremlcompiler compile {artifact.path} .` does the same by hand) and generates the `{cls}` class.
2. Minimum deployment target: iOS {artifact.details.get("min_runtime", {}).get("ios", "16")}. Shapes are fixed, which
   keeps the model eligible for the Neural Engine.

Inputs and outputs:

{_io_table(manifest, artifact)}

```swift
import CoreML

let config = MLModelConfiguration()
config.computeUnits = .all            // CPU, GPU and Neural Engine
let model = try {cls}(configuration: config)
{arrays}
// fill the arrays: token ids, then 0 padding; attention_mask 1 for tokens, 0 for padding
let result = try model.prediction({feed})
let embedding = result.{out}          // MLMultiArray
```

{"Tokenizer: `" + tokenizer + "` (Hugging Face tokenizer.json)." if tokenizer else ""}
The package's metadata carries the edgekit version and the source model's SHA-256 (`user_defined_metadata`).
This artifact was validated structurally on Linux (`converted-not-run`): run it once on a Mac or device
(`edgekit verify` there runs it numerically).
"""
