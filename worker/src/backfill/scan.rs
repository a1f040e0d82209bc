//! Walking every record a backfill window holds, although HubSpot's search
//! reaches at most 10,000 results per query: a window whose `total` is
//! above the cap is halved (by time) until each part fits; a window of one
//! millisecond that still holds more (a bulk import) is walked by record
//! id, one query of at most the cap after another.

use domain::object_type::ObjectType;
use secrecy::SecretString;
use shared::hubspot::{CrmObject, HubSpotClient, ModifiedWindow};

/// The windows still to walk, oldest first, for one object type.
pub(super) struct Scan<'a> {
    client: &'a HubSpotClient,
    token: &'a SecretString,
    ty: ObjectType,
    properties: &'a [String],
    cap: u64,
    /// Last in, first out: the older half of a split is pushed last.
    stack: Vec<ModifiedWindow>,
    /// The query being paged: its window, its next cursor, results so far.
    current: Option<(ModifiedWindow, Option<String>, u64)>,
}

impl<'a> Scan<'a> {
    /// A walk of `[since_ms, until_ms]` with queries of at most `cap` results.
    pub(super) fn new(
        client: &'a HubSpotClient,
        token: &'a SecretString,
        ty: ObjectType,
        properties: &'a [String],
        (since_ms, until_ms): (i64, i64),
        cap: u64,
    ) -> Self {
        let window = ModifiedWindow {
            since_ms,
            until_ms,
            above_id: None,
        };
        Self {
            client,
            token,
            ty,
            properties,
            cap: cap.max(1),
            stack: vec![window],
            current: None,
        }
    }

    /// The next page of records; `None` when the walk is over.
    pub(super) async fn next_page(&mut self) -> anyhow::Result<Option<Vec<CrmObject>>> {
        loop {
            if let Some((window, after, seen)) = self.current.take() {
                let page = self.search(&window, after.as_deref()).await?;
                return Ok(Some(self.paged(window, page.results, page.next, seen)));
            }
            let Some(window) = self.stack.pop() else {
                return Ok(None);
            };
            let first = self.search(&window, None).await?;
            if first.total > self.cap {
                if let Some((older, newer)) = halves(&window) {
                    self.stack.push(newer);
                    self.stack.push(older);
                    metrics::counter!("worker_backfill_window_splits_total").increment(1);
                    continue;
                }
                if window.above_id.is_none() {
                    // One millisecond holds more than a query reaches: by id.
                    self.stack.push(ModifiedWindow {
                        above_id: Some(0),
                        ..window
                    });
                    continue;
                }
            }
            return Ok(Some(self.paged(window, first.results, first.next, 0)));
        }
    }

    /// Books a page of `window` (after `seen` results of its query): the
    /// query goes on while its next page is within the cap; a walk by id
    /// that reaches the cap starts a new query above the last id.
    fn paged(
        &mut self,
        window: ModifiedWindow,
        results: Vec<CrmObject>,
        next: Option<String>,
        seen: u64,
    ) -> Vec<CrmObject> {
        let seen = seen + results.len() as u64;
        match next {
            Some(after) if seen < self.cap => self.current = Some((window, Some(after), seen)),
            Some(_) => {
                let last = results
                    .iter()
                    .filter_map(|o| o.id.parse::<u64>().ok())
                    .max();
                match (window.above_id, last) {
                    (Some(_), Some(last)) => self.stack.push(ModifiedWindow {
                        above_id: Some(last),
                        ..window
                    }),
                    // A query by time that filled the cap: its total grew
                    // since it was checked. Check it again (it splits).
                    _ => self.stack.push(window),
                }
            }
            None => {}
        }
        results
    }

    async fn search(
        &self,
        window: &ModifiedWindow,
        after: Option<&str>,
    ) -> anyhow::Result<shared::hubspot::SearchPage> {
        self.client
            .search_modified(self.token, self.ty, window, self.properties, after)
            .await
            .map_err(|e| anyhow::anyhow!("HubSpot search: {e}"))
    }
}

/// The two halves of a window by time; `None` for one millisecond (or a
/// walk by id, which is not split again).
fn halves(w: &ModifiedWindow) -> Option<(ModifiedWindow, ModifiedWindow)> {
    if w.above_id.is_some() || w.since_ms >= w.until_ms {
        return None;
    }
    let mid = w.since_ms + (w.until_ms - w.since_ms) / 2;
    let older = ModifiedWindow {
        until_ms: mid,
        ..*w
    };
    let newer = ModifiedWindow {
        since_ms: mid + 1,
        ..*w
    };
    Some((older, newer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_cover_the_window_without_overlap() {
        let w = ModifiedWindow {
            since_ms: 10,
            until_ms: 15,
            above_id: None,
        };
        let (a, b) = halves(&w).expect("splits");
        assert_eq!(
            (a.since_ms, a.until_ms, b.since_ms, b.until_ms),
            (10, 12, 13, 15)
        );
        let one = ModifiedWindow {
            since_ms: 7,
            until_ms: 7,
            above_id: None,
        };
        assert!(halves(&one).is_none());
        assert!(
            halves(&ModifiedWindow {
                above_id: Some(1),
                ..w
            })
            .is_none()
        );
    }
}
