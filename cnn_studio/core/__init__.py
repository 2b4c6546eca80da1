"""Plumbing every step uses: events, errors, cancellation, paths and atomic files, the process
boundary, TensorFlow's quiet import, hashes, and what this computer can do (doctor)."""
