"""Export: .keras, SavedModel, TFLite and ONNX writers with verification, and the model card."""
