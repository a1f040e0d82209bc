//! `GET {base}/Advertisers/{SID}/Campaigns/{ProgramId}`: checks an Account
//! SID, Auth Token and Program ID together before the settings are saved.
//! impact.com answers 200 with the program only when all three belong
//! together, 401/403 for credentials it refuses (a wrong SID or token, a
//! disabled token, or a scoped token not allowed to read programs), and 404
//! for a program the account does not have.

use super::read::text;
use super::{ImpactClient, ImpactCredentials, ImpactError};

/// What impact.com said about the settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProgramCheck {
    /// The program belongs to the account.
    Found {
        /// Its `Name`.
        name: Option<String>,
        /// Its `State` (`ACTIVE`, `DEACTIVATED`, ...).
        state: Option<String>,
    },
    /// 401/403: the Account SID and Auth Token are refused.
    CredentialsRefused {
        /// The HTTP status.
        status: u16,
    },
    /// 404: the account has no such program.
    ProgramNotFound,
}

impl ImpactClient {
    /// Checks `creds` and `program_id` together (one request, counted in the
    /// account's hourly budget). Other answers (429, 5xx, a transport
    /// error) are errors: nothing was learnt.
    pub async fn check_program(
        &self,
        creds: &ImpactCredentials,
        program_id: &str,
    ) -> Result<ProgramCheck, ImpactError> {
        let path = format!(
            "/Advertisers/{}/Campaigns/{}",
            creds.account_sid,
            url::form_urlencoded::byte_serialize(program_id.as_bytes()).collect::<String>()
        );
        match self.read(creds, &path).await {
            Ok(answer) => {
                let v: serde_json::Value = serde_json::from_str(&answer.body).unwrap_or_default();
                Ok(ProgramCheck::Found {
                    name: text(&v, "Name"),
                    state: text(&v, "State"),
                })
            }
            Err(ImpactError::Auth { status, .. }) => {
                Ok(ProgramCheck::CredentialsRefused { status })
            }
            Err(ImpactError::Rejected { status: 404, .. }) => Ok(ProgramCheck::ProgramNotFound),
            Err(e) => Err(e),
        }
    }
}
