//! Logging in and out with an operator token.

use axum::{
    Form,
    extract::{FromRequest, Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};
use minijinja::context;
use serde_json::json;

use super::{
    AdminState, Fields, checked, db_error, page_error, render, render_status, same_origin, store,
};
use crate::operators::{self, Refusal};

/// `GET /admin/login`.
pub(super) async fn login_form(State(state): State<AdminState>, headers: HeaderMap) -> Response {
    if state.pages.sessions.find(&headers).is_some() {
        return Redirect::to("/admin/portals").into_response();
    }
    render(&state, None, "ops/login.html", context! {})
}

/// `POST /admin/login` (`token`): a session for the token's operator.
/// Failures count towards the admin API's lockout.
pub(super) async fn login(State(state): State<AdminState>, req: Request) -> Response {
    let auth = match &state.auth {
        Ok(a) => a.clone(),
        Err(why) => {
            return page_error(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("The operators' pages are off: {why}"),
            );
        }
    };
    let peer = operators::peer(&req);
    let origin_ok = same_origin(req.headers());
    let Ok(Form(f)) = Form::<Fields>::from_request(req, &()).await else {
        return page_error(StatusCode::BAD_REQUEST, "a form was expected");
    };
    if !origin_ok {
        return page_error(
            StatusCode::FORBIDDEN,
            "This form did not come from this page.",
        );
    }
    let token = f.get("token").map(|t| t.trim()).filter(|t| !t.is_empty());
    let name = match auth.check(peer, token) {
        Ok(name) => name.to_owned(),
        Err(refusal) => {
            let (status, message, retry) = match refusal {
                Refusal::Invalid => (
                    StatusCode::UNAUTHORIZED,
                    "That is not an operator token.".to_owned(),
                    None,
                ),
                Refusal::LockedOut { retry_after, .. } => {
                    let secs = retry_after.as_secs().max(1);
                    (
                        StatusCode::TOO_MANY_REQUESTS,
                        format!("Too many failed attempts: try again in {secs} s."),
                        Some(secs),
                    )
                }
            };
            let mut resp = render_status(
                &state,
                None,
                "ops/login.html",
                context! { errors => vec![message] },
                status,
            );
            if let Some(secs) = retry {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            return resp;
        }
    };
    let set = state.pages.sessions.open(&name);
    if let Ok(w) = store(&state) {
        let actor = format!("admin:{name}");
        let detail = json!({ "route": "POST /admin/login" });
        if let Err(e) =
            shared::db::audit::record(&w.pool, None, &actor, "operator.login", &detail, "ok").await
        {
            tracing::warn!(error = %e, "operator login could not be audited; refused");
            return db_error(e);
        }
    }
    ([(header::SET_COOKIE, set)], Redirect::to("/admin/portals")).into_response()
}

/// `POST /admin/logout`.
pub(super) async fn logout(
    State(state): State<AdminState>,
    headers: HeaderMap,
    Form(f): Form<Fields>,
) -> Response {
    if let Err(r) = checked(&state, &headers, &f) {
        return r;
    }
    let clear = state.pages.sessions.close(&headers);
    ([(header::SET_COOKIE, clear)], Redirect::to("/admin/login")).into_response()
}
