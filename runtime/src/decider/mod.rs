//! Workflow definitions -> decisions (filled in by its owner).
