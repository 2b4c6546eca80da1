"""Classifying new images with a trained model (the Classify step and `cnn-studio predict`)."""
