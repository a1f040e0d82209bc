//! The states stored as text (`conversions.status`, `webhook_events.status`,
//! `portals.credentials_status`, `dead_letters.state`), as types. Each is
//! stored under its [`as_str`](DeliveryStatus::as_str) name, read back with
//! [`FromStr`].

use std::{fmt, str::FromStr};

/// A stored state name that is not one of the type's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind}: {value:?}")]
pub struct UnknownStatus {
    /// What was being read.
    pub kind: &'static str,
    /// The stored text.
    pub value: String,
}

macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident, $kind:literal { $($(#[$vdoc:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// The stored name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),+
                }
            }
        }

        impl FromStr for $name {
            type Err = UnknownStatus;
            fn from_str(s: &str) -> Result<Self, UnknownStatus> {
                match s {
                    $($text => Ok(Self::$variant),)+
                    _ => Err(UnknownStatus { kind: $kind, value: s.to_owned() }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum! {
    /// Where a conversion (or an adjustment) stands with impact.com.
    DeliveryStatus, "delivery status" {
        /// Recorded, not delivered yet (or its delivery failed transiently).
        Pending => "pending",
        /// impact.com queued it.
        Delivered => "delivered",
        /// impact.com refused it for good.
        Failed => "failed",
    }
}

text_enum! {
    /// How an event's processing was recorded.
    EventStatus, "event status" {
        /// Portal unknown, paused, uninstalled or unconfigured; erased contact.
        Skipped => "skipped",
        /// No trigger fired.
        Ignored => "ignored",
        /// A permanent failure.
        Failed => "failed",
        /// A conversion was recorded.
        Converted => "converted",
        /// An erasure request carried out.
        Erased => "erased",
        /// Reversals or modifications were made.
        Adjusted => "adjusted",
    }
}

text_enum! {
    /// Whether a portal's impact.com credentials work, as last seen.
    CredentialsStatus, "credentials status" {
        /// Not used since they were set.
        Unknown => "unknown",
        /// impact.com accepted them.
        Ok => "ok",
        /// impact.com refused them.
        Failing => "failing",
    }
}

text_enum! {
    /// A dead letter's life.
    DeadLetterState, "dead-letter state" {
        /// Waiting for an operator.
        Open => "open",
        /// Taken by a replay in progress.
        Replaying => "replaying",
        /// Replayed (delivered, failed again for good, or nothing to send).
        Replayed => "replayed",
        /// Discarded by an operator.
        Discarded => "discarded",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_back_as_written() {
        for s in [
            DeliveryStatus::Pending,
            DeliveryStatus::Delivered,
            DeliveryStatus::Failed,
        ] {
            assert_eq!(s.as_str().parse::<DeliveryStatus>(), Ok(s));
        }
        assert_eq!("erased".parse::<EventStatus>(), Ok(EventStatus::Erased));
        assert_eq!(CredentialsStatus::Failing.to_string(), "failing");
        assert_eq!("open".parse::<DeadLetterState>(), Ok(DeadLetterState::Open));
        assert!("queued".parse::<DeliveryStatus>().is_err());
    }
}
