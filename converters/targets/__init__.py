"""Every target module. Importing this package registers all targets (cheaply: heavy imports live in bodies)."""

from converters.targets import coreml, onnx_fp16, onnx_fp32, onnx_int8, openvino_ir, tflite  # noqa: F401
