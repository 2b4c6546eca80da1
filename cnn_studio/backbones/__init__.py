"""Pretrained backbones: the registry, in-model preprocessing, weights and the classifier."""
