//! History events and decisions in SWF's JSON shape (owned by the decider; placeholder).

/// Placeholder until the decider's owner fills in the model.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HistoryEvent {
    pub event_id: i64,
}

/// Placeholder until the decider's owner fills in the model.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Decision {}
