//! Deal pipelines and their stages.

use serde_json::{Value, json};

/// A deal pipeline stage.
#[derive(Debug, Clone, Copy)]
pub struct Stage {
    /// Internal id (`closedwon`, or numeric in custom pipelines).
    pub id: &'static str,
    /// Display label.
    pub label: &'static str,
    /// Win probability.
    pub probability: f64,
    /// Whether the stage closes the deal.
    pub closed: bool,
}

/// A deal pipeline.
#[derive(Debug)]
pub struct Pipeline {
    /// Internal id.
    pub id: &'static str,
    /// Display label.
    pub label: &'static str,
    /// Stages in display order.
    pub stages: &'static [Stage],
}

const fn stage(id: &'static str, label: &'static str, probability: f64, closed: bool) -> Stage {
    Stage {
        id,
        label,
        probability,
        closed,
    }
}

/// HubSpot's default sales pipeline plus one custom pipeline with numeric ids.
pub static PIPELINES: [Pipeline; 2] = [
    Pipeline {
        id: "default",
        label: "Sales Pipeline",
        stages: &[
            stage("appointmentscheduled", "Appointment Scheduled", 0.2, false),
            stage("qualifiedtobuy", "Qualified To Buy", 0.4, false),
            stage(
                "presentationscheduled",
                "Presentation Scheduled",
                0.6,
                false,
            ),
            stage(
                "decisionmakerboughtin",
                "Decision Maker Bought-In",
                0.8,
                false,
            ),
            stage("contractsent", "Contract Sent", 0.9, false),
            stage("closedwon", "Closed Won", 1.0, true),
            stage("closedlost", "Closed Lost", 0.0, true),
        ],
    },
    Pipeline {
        id: "75431234",
        label: "Partner Pipeline",
        stages: &[
            stage("75431235", "Partner Referral", 0.1, false),
            stage("75431236", "Partner Qualified", 0.5, false),
            stage("75431237", "Partner Won", 1.0, true),
            stage("75431238", "Partner Lost", 0.0, true),
        ],
    },
];

/// The pipeline a stage belongs to.
pub fn pipeline_of(stage_id: &str) -> Option<&'static Pipeline> {
    PIPELINES
        .iter()
        .find(|p| p.stages.iter().any(|s| s.id == stage_id))
}

/// The probability HubSpot sets when a deal enters a stage.
pub fn stage_probability(stage_id: &str) -> Option<f64> {
    PIPELINES
        .iter()
        .flat_map(|p| p.stages.iter())
        .find(|s| s.id == stage_id)
        .map(|s| s.probability)
}

/// The JSON shape of one pipeline in `GET /crm/v3/pipelines/deals`.
pub fn pipeline_json(p: &Pipeline, display_order: usize) -> Value {
    let stages: Vec<Value> = p
        .stages
        .iter()
        .enumerate()
        .map(|(i, s)| stage_json(s, i))
        .collect();
    json!({
        "id": p.id,
        "label": p.label,
        "displayOrder": display_order,
        "stages": stages,
        "createdAt": "2020-01-01T00:00:00.000Z",
        "updatedAt": "2020-01-01T00:00:00.000Z",
        "archived": false,
    })
}

/// The JSON shape of one stage.
pub fn stage_json(s: &Stage, display_order: usize) -> Value {
    json!({
        "id": s.id,
        "label": s.label,
        "displayOrder": display_order,
        "metadata": {"isClosed": s.closed.to_string(), "probability": format!("{:?}", s.probability)},
        "createdAt": "2020-01-01T00:00:00.000Z",
        "updatedAt": "2020-01-01T00:00:00.000Z",
        "archived": false,
        "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
    })
}
