"""Qt layer of CNN Studio (installed as cnn_studio.ui). Nothing happens at import time."""
