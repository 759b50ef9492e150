//! An in-memory fake of the SWF boundary for unit tests (placeholder).
