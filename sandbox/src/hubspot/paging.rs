//! Page sizes and result caps the fake applies as HubSpot does, settable
//! (for tests) so that what HubSpot only does at scale can be shown with a
//! few records.

use super::FakeHubSpot;
use crate::lock;

/// Associations per row of a v4 batch read before the row pages. HubSpot
/// does not document the size (rows page only "if there are more pages");
/// the v4 single-record read's largest page is used.
pub(crate) const ASSOCIATIONS_PER_ROW: usize = 500;
/// Most results one search query reaches (paging beyond answers 400).
pub(crate) const SEARCH_RESULTS: usize = 10_000;

/// The fake's paging limits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Paging {
    /// See [`ASSOCIATIONS_PER_ROW`].
    pub(crate) associations_per_row: usize,
    /// See [`SEARCH_RESULTS`].
    pub(crate) search_results: usize,
}

impl Default for Paging {
    fn default() -> Self {
        Self {
            associations_per_row: ASSOCIATIONS_PER_ROW,
            search_results: SEARCH_RESULTS,
        }
    }
}

impl FakeHubSpot {
    /// Associations per row of a v4 batch association read before the row
    /// carries `paging.next.after` (default 500). For tests.
    pub fn set_association_row_page(&self, size: usize) {
        lock(&self.state.paging).associations_per_row = size.max(1);
    }

    /// Most results one search query reaches (default HubSpot's 10,000;
    /// `total` still counts every match). For tests.
    pub fn set_search_result_cap(&self, cap: usize) {
        lock(&self.state.paging).search_results = cap.max(1);
    }

    pub(crate) fn paging(&self) -> Paging {
        *lock(&self.state.paging)
    }
}
