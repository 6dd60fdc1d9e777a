"""INT8 quantization shared by the ONNX targets: presets, a fake-quant simulator and sensitivity-driven recovery."""
