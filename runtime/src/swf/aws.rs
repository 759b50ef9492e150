//! The aws-sdk-swf implementation of the SWF boundary (owned by the worker owner; placeholder).
