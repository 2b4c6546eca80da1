"""A run folder and the runs around it: the folder's files and readers, its lock and checks,
the listing, the registry of runs made elsewhere, and the project file."""
