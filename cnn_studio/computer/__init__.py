"""What this computer can do (``cnn-studio doctor``, Help → This computer): Python and library versions,
the GPU, the window system, the weights store and the runs folder; one module per kind of check."""
