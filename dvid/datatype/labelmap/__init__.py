"""labelmap: supervoxel label volumes with a body mapping, label indexes and proofreading edits."""
