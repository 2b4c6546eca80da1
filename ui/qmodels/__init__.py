"""Part of the Qt layer."""
