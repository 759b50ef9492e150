//! Activity workers (filled in by its owner).
