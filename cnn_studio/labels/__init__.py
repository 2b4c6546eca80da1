"""Labels you can trust: the label-issue finder and its checker, corrections, which images to
label next (suggest) and the labels given to them."""
