"""Version DAGs: commit, branch, merge, and resolution of version references."""
