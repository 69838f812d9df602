"""Storage: ordered key-value engines, DVID's key layout, and the versioned store."""
