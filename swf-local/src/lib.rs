//! swf-local: see crate docs (filled in by its owner).
