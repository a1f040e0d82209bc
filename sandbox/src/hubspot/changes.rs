//! Changing and reading records through the handle; every change emits the
//! webhook event HubSpot would send.

use anyhow::anyhow;
use chrono::{DateTime, Utc};

use super::model::{CrmObject, ObjectType};
use super::webhooks::{AssociationChange, WebhookEvent};
use super::{FakeHubSpot, Props, Source, props, schema, seed};
use crate::lock;

impl FakeHubSpot {
    /// Creates a record (emits `{type}.creation`), linked to `associations`.
    pub fn create_object(
        &self,
        portal: u64,
        t: ObjectType,
        properties: Props,
        associations: &[(ObjectType, u64)],
    ) -> anyhow::Result<u64> {
        let (id, event) = self.create_quiet(portal, t, properties, associations, &Source::crm())?;
        if let Some(e) = event {
            self.emit(vec![e]);
        }
        Ok(id)
    }

    /// Creates without emitting; returns the event to emit (none for line items).
    pub(crate) fn create_quiet(
        &self,
        portal: u64,
        t: ObjectType,
        properties: Props,
        associations: &[(ObjectType, u64)],
        source: &Source,
    ) -> anyhow::Result<(u64, Option<WebhookEvent>)> {
        let now = Utc::now();
        let id = self.with_portal(portal, |p| -> anyhow::Result<u64> {
            let id = p.insert(t, properties, now);
            for (to, to_id) in associations {
                if !p.associate((t, id), (*to, *to_id)) {
                    return Err(anyhow!(
                        "cannot associate {t} {id} with unknown {to} {to_id}"
                    ));
                }
            }
            Ok(id)
        })??;
        let event = (t != ObjectType::LineItems)
            .then(|| self.event(portal, (t, id), "creation", now, source, None));
        Ok((id, event))
    }

    /// Creates a contact; returns its id.
    pub fn create_contact<K: Into<String>, V: Into<String>>(
        &self,
        portal: u64,
        properties: impl IntoIterator<Item = (K, V)>,
    ) -> anyhow::Result<u64> {
        self.create_object(portal, ObjectType::Contacts, props(properties), &[])
    }

    /// Creates a company; returns its id.
    pub fn create_company<K: Into<String>, V: Into<String>>(
        &self,
        portal: u64,
        properties: impl IntoIterator<Item = (K, V)>,
    ) -> anyhow::Result<u64> {
        self.create_object(portal, ObjectType::Companies, props(properties), &[])
    }

    /// Creates a deal with its line items, associated with `contact_id` (and
    /// that contact's companies). Fills `pipeline`, `dealstage`, `amount`,
    /// `hs_deal_stage_probability` and `deal_contact_id` when absent.
    pub fn create_deal<K: Into<String>, V: Into<String>>(
        &self,
        portal: u64,
        properties: impl IntoIterator<Item = (K, V)>,
        line_items: Vec<Props>,
        contact_id: Option<u64>,
    ) -> anyhow::Result<u64> {
        let (id, event) = self.create_deal_quiet(
            portal,
            props(properties),
            line_items,
            contact_id,
            &Source::crm(),
        )?;
        self.emit(event.into_iter().collect());
        Ok(id)
    }

    pub(crate) fn create_deal_quiet(
        &self,
        portal: u64,
        mut properties: Props,
        line_items: Vec<Props>,
        contact_id: Option<u64>,
        source: &Source,
    ) -> anyhow::Result<(u64, Option<WebhookEvent>)> {
        let mut assoc = Vec::new();
        let mut total_cents = 0u64;
        for mut item in line_items {
            let cents = |v: Option<&String>| v.and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
            let line = cents(item.get("price")) * cents(item.get("quantity"));
            total_cents += (line * 100.0).round() as u64;
            item.entry("amount".into())
                .or_insert_with(|| seed::money((line * 100.0).round() as u64));
            let (li, _) = self.create_quiet(portal, ObjectType::LineItems, item, &[], source)?;
            assoc.push((ObjectType::LineItems, li));
        }
        if let Some(c) = contact_id {
            assoc.push((ObjectType::Contacts, c));
            let companies = self.associated(portal, ObjectType::Contacts, c, ObjectType::Companies);
            assoc.extend(companies.into_iter().map(|co| (ObjectType::Companies, co)));
            properties
                .entry(schema::CUSTOM_DEAL_CONTACT_ID.into())
                .or_insert_with(|| c.to_string());
        }
        properties
            .entry("pipeline".into())
            .or_insert_with(|| "default".into());
        let stage = properties
            .entry("dealstage".into())
            .or_insert_with(|| "appointmentscheduled".into())
            .clone();
        if let Some(p) = schema::stage_probability(&stage) {
            properties
                .entry("hs_deal_stage_probability".into())
                .or_insert_with(|| format!("{p:?}"));
        }
        properties
            .entry("amount".into())
            .or_insert_with(|| seed::money(total_cents));
        self.create_quiet(portal, ObjectType::Deals, properties, &assoc, source)
    }

    /// Sets one property and emits `{type}.propertyChange` with
    /// `propertyName`/`propertyValue`.
    pub fn set_property(
        &self,
        portal: u64,
        t: ObjectType,
        id: u64,
        name: &str,
        value: &str,
    ) -> anyhow::Result<()> {
        let event = self.set_quiet(portal, (t, id), name, value, &Source::crm(), Utc::now())?;
        self.emit(vec![event]);
        Ok(())
    }

    pub(crate) fn set_quiet(
        &self,
        portal: u64,
        (t, id): (ObjectType, u64),
        name: &str,
        value: &str,
        source: &Source,
        now: DateTime<Utc>,
    ) -> anyhow::Result<WebhookEvent> {
        let found = self.with_portal(portal, |p| p.set(t, id, name, value, now))?;
        anyhow::ensure!(found, "no live {t} {id} in portal {portal}");
        Ok(self.event(
            portal,
            (t, id),
            "propertyChange",
            now,
            source,
            Some((name, value)),
        ))
    }

    /// Sets the last-modified date of records to `at`, without a webhook:
    /// what a bulk import does when it stamps thousands of records within
    /// one millisecond. For tests (search windows, backfills).
    pub fn stamp_modified(
        &self,
        portal: u64,
        t: ObjectType,
        ids: &[u64],
        at: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        self.with_portal(portal, |p| {
            for id in ids {
                let o = p
                    .get_mut(t, *id)
                    .ok_or_else(|| anyhow!("no {t} {id} in portal {portal}"))?;
                o.updated_at = at;
                o.properties
                    .insert(t.last_modified_property().into(), super::model::iso(at));
            }
            Ok(())
        })?
    }

    /// Archives a record and emits `{type}.deletion`.
    pub fn delete_object(&self, portal: u64, t: ObjectType, id: u64) -> anyhow::Result<()> {
        let now = Utc::now();
        self.with_portal(portal, |p| match p.get_mut(t, id) {
            Some(o) if !o.archived => {
                o.archived = true;
                o.updated_at = now;
                Ok(())
            }
            _ => Err(anyhow!("no live {t} {id} in portal {portal}")),
        })??;
        if t != ObjectType::LineItems {
            let event = self.event(portal, (t, id), "deletion", now, &Source::crm(), None);
            self.emit(vec![event]);
        }
        Ok(())
    }

    /// A GDPR delete of a contact (HubSpot's "permanently delete"): the
    /// record and its values are gone (reads answer 404) and
    /// `contact.privacyDeletion` is emitted.
    pub fn privacy_delete_contact(&self, portal: u64, id: u64) -> anyhow::Result<()> {
        let now = Utc::now();
        self.with_portal(portal, |p| match p.get_mut(ObjectType::Contacts, id) {
            Some(o) => {
                o.archived = true;
                o.properties.clear();
                o.updated_at = now;
                Ok(())
            }
            None => Err(anyhow!("no contact {id} in portal {portal}")),
        })??;
        let event = self.event(
            portal,
            (ObjectType::Contacts, id),
            "privacyDeletion",
            now,
            &Source::crm(),
            None,
        );
        self.emit(vec![event]);
        Ok(())
    }

    /// Links two records (both directions). No webhook.
    pub fn associate(
        &self,
        portal: u64,
        from: (ObjectType, u64),
        to: (ObjectType, u64),
    ) -> anyhow::Result<()> {
        let ok = self.with_portal(portal, |p| p.associate(from, to))?;
        anyhow::ensure!(ok, "cannot associate {from:?} with {to:?}: unknown record");
        Ok(())
    }

    /// Links two records (both directions) and emits the two
    /// `{type}.associationChange` events HubSpot sends to apps subscribed
    /// to association changes (`fromObjectId`/`toObjectId`, no `objectId`),
    /// together, so they travel in one delivery.
    pub fn associate_notifying(
        &self,
        portal: u64,
        from: (ObjectType, u64),
        to: (ObjectType, u64),
    ) -> anyhow::Result<()> {
        self.associate(portal, from, to)?;
        let now = Utc::now();
        let event = |a: (ObjectType, u64), b: (ObjectType, u64)| {
            let mut e = self.event(
                portal,
                (a.0, 0),
                "associationChange",
                now,
                &Source::crm(),
                None,
            );
            e.association = Some(AssociationChange {
                association_type: format!(
                    "{}_TO_{}",
                    a.0.singular().to_uppercase(),
                    b.0.singular().to_uppercase()
                ),
                from_object_id: a.1,
                to_object_id: b.1,
                association_removed: false,
                is_primary_association: false,
            });
            e
        };
        self.emit(vec![event(from, to), event(to, from)]);
        Ok(())
    }

    /// A record (archived ones too), as stored.
    pub fn object(&self, portal: u64, t: ObjectType, id: u64) -> Option<CrmObject> {
        lock(&self.state.portals).get(&portal)?.get(t, id).cloned()
    }

    /// All live records of a type, by id.
    pub fn objects(&self, portal: u64, t: ObjectType) -> Vec<CrmObject> {
        let portals = lock(&self.state.portals);
        portals
            .get(&portal)
            .map(|p| p.live(t).cloned().collect())
            .unwrap_or_default()
    }

    /// Ids of live `to` records associated with a record.
    pub fn associated(&self, portal: u64, t: ObjectType, id: u64, to: ObjectType) -> Vec<u64> {
        let portals = lock(&self.state.portals);
        portals
            .get(&portal)
            .map(|p| p.associated((t, id), to))
            .unwrap_or_default()
    }
}
