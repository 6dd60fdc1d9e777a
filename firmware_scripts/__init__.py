"""Shell scripts, systemd units and broker configuration that ``edgekit flash`` and ``edgekit provision`` ship to
devices. Not Python: this file only makes the directory a package (``edgekit.firmware_scripts`` in the wheel) so
the scripts can be found with ``importlib.resources``."""
