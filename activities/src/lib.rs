//! The media pipeline (filled in by its owner).
