"""Bundles: a convert output directory, or the same packed as .tar.gz / .zip, with manifest and checksums."""
