//! Whether an event's writes and delivery share the worker's batches.

/// How an event is recorded and delivered. Both cases take the same path
/// (the same statements, the same locks); only the company differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Batching {
    /// With the other events the worker has in progress: outcomes share the
    /// worker's record batches, deliveries their portal's delivery batches
    /// (live traffic, [`crate::process_message`]).
    Shared,
    /// On its own, a batch of one, committed and posted before the call
    /// returns (replay, backfill).
    Alone,
}
