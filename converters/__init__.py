"""Host-side conversion: one module per target under ``converters.targets``, sequenced by ``converters.pipeline``."""
