//! Opportunistic coalescing, shared by the record and delivery batchers:
//! work arriving while fewer than `max` batches are in flight starts one at
//! once (its caller spawns a leader); work arriving meanwhile waits and
//! forms the next batch a leader takes. So batching adds no wait when
//! quiet, and batches grow with the load.

use std::sync::Mutex;

/// Items waiting for the next batch, and the leaders at work.
pub struct Coalescer<T> {
    state: Mutex<(Vec<T>, usize)>,
    max: usize,
}

impl<T> Coalescer<T> {
    /// At most `max` leaders at once.
    pub const fn new(max: usize) -> Self {
        Self {
            state: Mutex::new((Vec::new(), 0)),
            max,
        }
    }

    /// Queues `item`; true when the caller must start a leader (which then
    /// calls [`Self::next_batch`] until it returns `None`).
    pub fn push(&self, item: T) -> bool {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.0.push(item);
        let start = s.1 < self.max;
        if start {
            s.1 += 1;
        }
        start
    }

    /// Everything waiting, for a leader; `None` (and the leader is done)
    /// when nothing waits.
    pub fn next_batch(&self) -> Option<Vec<T>> {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if s.0.is_empty() {
            s.1 -= 1;
            return None;
        }
        Some(std::mem::take(&mut s.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaders_are_bounded_and_take_everything_waiting() {
        let c = Coalescer::new(2);
        assert!(c.push(1), "first item: a leader starts");
        assert!(c.push(2), "second leader allowed");
        assert!(!c.push(3), "third item waits");
        assert_eq!(c.next_batch(), Some(vec![1, 2, 3]));
        assert_eq!(c.next_batch(), None, "a leader ends");
        assert!(c.push(4), "a leader slot is free again");
        assert_eq!(c.next_batch(), Some(vec![4]));
        assert_eq!(c.next_batch(), None);
        assert_eq!(c.next_batch(), None);
        assert!(c.push(5) && c.push(6), "both slots free");
    }
}
