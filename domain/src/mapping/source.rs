//! Mapping sources: HubSpot properties, the seed's computed fields, line-item
//! fields and constants.

use crate::object_type::ObjectType;

/// Where a mapped value comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Source {
    /// A property of the object, e.g. `lifecyclestage`.
    Property(String),
    /// `contact_[lead_status]_id` = `{hs_object_id}_{hs_lead_status}` (contacts).
    LeadStatusId,
    /// `deal_[stage]_id` = `{hs_object_id}_{dealstage}` (deals).
    DealStageId,
    /// `deal_[deal stage]`: the stage's label from the pipelines API (deals).
    DealStageLabel,
    /// `associated_contact_id`: the id of the deal's (primary) contact (deals).
    AssociatedContactId,
    /// `event_occurred_at`: when the triggering change happened (the event's `occurredAt`).
    OccurredAt,
    /// `line_item{i}.<prop>`: a property of each line item of the deal.
    LineItem(String),
    /// A constant value.
    Const(String),
}

impl Source {
    /// Parses a `from` value as written in a document, for `object_type`.
    pub fn parse_from(text: &str, object_type: ObjectType) -> Result<Self, String> {
        let only = |ty: ObjectType, s: Source| {
            if object_type == ty {
                Ok(s)
            } else {
                Err(format!(
                    "{text:?} is only available for {ty}, not {object_type}"
                ))
            }
        };
        match text {
            "contact_[lead_status]_id" => only(ObjectType::Contacts, Self::LeadStatusId),
            "deal_[stage]_id" => only(ObjectType::Deals, Self::DealStageId),
            "deal_[deal stage]" => only(ObjectType::Deals, Self::DealStageLabel),
            "associated_contact_id" => only(ObjectType::Deals, Self::AssociatedContactId),
            "event_occurred_at" => Ok(Self::OccurredAt),
            _ => {
                if let Some(prop) = text.strip_prefix("line_item{i}.") {
                    check_property_name(prop)?;
                    return only(ObjectType::Deals, Self::LineItem(prop.to_owned()));
                }
                if text.starts_with("line_item") {
                    return Err(format!(
                        "{text:?}: line-item sources are written line_item{{i}}.<property>, \
                         e.g. line_item{{i}}.hs_sku"
                    ));
                }
                check_property_name(text)?;
                Ok(Self::Property(text.to_owned()))
            }
        }
    }

    /// The document form of a `from` source (`None` for constants).
    pub fn display_from(&self) -> Option<String> {
        Some(match self {
            Self::Property(p) => p.clone(),
            Self::LeadStatusId => "contact_[lead_status]_id".into(),
            Self::DealStageId => "deal_[stage]_id".into(),
            Self::DealStageLabel => "deal_[deal stage]".into(),
            Self::AssociatedContactId => "associated_contact_id".into(),
            Self::OccurredAt => "event_occurred_at".into(),
            Self::LineItem(p) => format!("line_item{{i}}.{p}"),
            Self::Const(_) => return None,
        })
    }

    /// The object properties this source reads.
    pub fn properties(&self) -> Vec<&str> {
        match self {
            Self::Property(p) => vec![p.as_str()],
            Self::LeadStatusId => vec!["hs_object_id", "hs_lead_status"],
            Self::DealStageId => vec!["hs_object_id", "dealstage"],
            Self::DealStageLabel => vec!["dealstage", "pipeline"],
            _ => vec![],
        }
    }
}

/// HubSpot internal property names: letters, digits, underscores (custom
/// properties may use upper case and dashes too).
fn check_property_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a HubSpot internal property name (letters, digits, underscores), \
             nor a computed field (contact_[lead_status]_id, deal_[stage]_id, \
             deal_[deal stage], associated_contact_id, event_occurred_at, line_item{{i}}.<property>)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn computed_fields_belong_to_their_object_type() {
        assert_eq!(
            Source::parse_from("contact_[lead_status]_id", ObjectType::Contacts),
            Ok(Source::LeadStatusId)
        );
        assert!(Source::parse_from("contact_[lead_status]_id", ObjectType::Deals).is_err());
        assert_eq!(
            Source::parse_from("line_item{i}.hs_sku", ObjectType::Deals),
            Ok(Source::LineItem("hs_sku".into()))
        );
        assert!(Source::parse_from("line_item{i}.hs_sku", ObjectType::Contacts).is_err());
        assert!(Source::parse_from("line_item1.hs_sku", ObjectType::Deals).is_err());
        assert!(Source::parse_from("deal stage", ObjectType::Deals).is_err());
        for s in [
            "deal_[deal stage]",
            "deal_[stage]_id",
            "amount",
            "event_occurred_at",
        ] {
            let parsed = Source::parse_from(s, ObjectType::Deals).expect("valid");
            assert_eq!(parsed.display_from().as_deref(), Some(s));
        }
    }
}
