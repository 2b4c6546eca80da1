"""Dataset import: formats, decoding, folder/CSV indexing, checks, splits and the tf.data pipeline."""
