"""Explanations: Grad-CAM, feature maps, filters, architecture table and the robustness report."""
