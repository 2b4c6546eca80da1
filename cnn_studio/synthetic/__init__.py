"""Generated datasets: small multi-band tiles and MRI-like volumes the app and the tests make on the fly.

No download, no bundled megabytes: each generator writes a folder deterministically from a seed.
``multiband`` makes Sentinel-2-like 13-band uint16 GeoTIFF tiles whose classes differ only in the
near-infrared/red-edge bands; ``volumes`` makes NIfTI studies where a "lesion" shows in some slices only.
"""
