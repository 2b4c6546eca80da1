"""Training: settings, the Keras-to-events bridge, the two-phase trainer, run folders."""
