//! Helpers shared by several test modules.

pub mod deploy_check;
pub mod drill;
pub mod e2e;
pub mod metrics;
