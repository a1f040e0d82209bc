//! The dead-letter store's operator side: list, show, replay and discard,
//! shared by the CLI and the admin HTTP API. Dead letters are written by the
//! pipeline (`crate::pipeline::dead_letter`) and the runtime's sink
//! (`crate::runtime::dead_letter_sink`).

pub mod lease;
pub mod ops;
pub mod preview;
mod reevaluate;
pub mod replay;
mod replay_adjustment;
mod report;
