//! The caller, from the claims and scopes of the JWT that API Gateway verified
//! (`requestContext.authorizer.jwt`). The functions never see an unverified token: in AWS the
//! HTTP API's JWT authorizer rejects those before the function runs.

use super::{ApiError, ErrorItem};
use crate::domain::access::{GROUP_ADMIN_SCOPE, OPERATOR_SCOPE, TENANT_ADMIN_SCOPE};
use crate::domain::{Action, GroupId, GroupRef, Principal, Role, TenantId};
use lambda_http::http::Method;
use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};

/// Whether the function checks callers. Enforced unless `AUTH_DISABLED=true`, which only the
/// local stack (`make run`) sets, because `cargo lambda watch` has no authorizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    Enforced,
    Disabled,
}

impl AuthMode {
    /// Reads `AUTH_DISABLED` once per cold start; warns when the check is off.
    pub fn from_env() -> Self {
        if std::env::var("AUTH_DISABLED").is_ok_and(|v| v == "true") {
            tracing::warn!("AUTH_DISABLED=true: every caller is treated as an operator");
            AuthMode::Disabled
        } else {
            AuthMode::Enforced
        }
    }
}

impl Action {
    /// Reading methods read; every other method writes.
    pub fn of(method: &Method) -> Action {
        if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
            Action::Read
        } else {
            Action::Write
        }
    }
}

/// The caller's roles, or 401 when the request carries no verified claims.
pub fn principal(req: &Request, mode: AuthMode) -> Result<Principal, ApiError> {
    if mode == AuthMode::Disabled {
        return Ok(Principal::local_operator());
    }
    let jwt = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => {
            ctx.authorizer.as_ref().and_then(|a| a.jwt.as_ref())
        }
        _ => None,
    };
    let Some(jwt) = jwt else {
        return Err(ApiError::Unauthenticated);
    };
    let claim = |name: &str| jwt.claims.get(name).map(String::as_str);
    // API Gateway fills `scopes` only for routes with authorization scopes; the token's own
    // `scope` claim (space-separated) carries them otherwise.
    let from_claim = claim("scope").or_else(|| claim("scp")).unwrap_or_default();
    let scopes: Vec<&str> = match &jwt.scopes {
        Some(scopes) if !scopes.is_empty() => scopes.iter().map(String::as_str).collect(),
        _ => from_claim.split_whitespace().collect(),
    };
    let tenant = claim("tenant_id").and_then(|t| TenantId::parse(t).ok());
    let group = claim("group_id").and_then(|g| GroupId::parse(g).ok());
    let mut roles = Vec::new();
    for scope in scopes {
        match (scope, &tenant, &group) {
            (OPERATOR_SCOPE, _, _) => roles.push(Role::Operator),
            (TENANT_ADMIN_SCOPE, Some(t), _) => roles.push(Role::TenantAdmin(t.clone())),
            (GROUP_ADMIN_SCOPE, Some(t), Some(g)) => roles.push(Role::GroupAdmin(GroupRef {
                tenant: t.clone(),
                group: g.clone(),
            })),
            _ => {}
        }
    }
    Ok(Principal::new(roles))
}

/// 403 unless the principal may act on the target.
pub fn authorize(
    principal: &Principal,
    target: crate::domain::Target<'_>,
    method: &Method,
) -> Result<(), ApiError> {
    if principal.may(target, Action::of(method)) {
        Ok(())
    } else {
        Err(ApiError::Forbidden)
    }
}

/// A function's routes, as the shared front of its router sees them.
pub trait Routes: Sized {
    /// The route of a raw path, with its parameters decoded and validated (404/400 otherwise).
    fn parse(path: &str) -> Result<Self, ApiError>;
    /// The route template, for the log line.
    fn template(&self) -> &'static str;
    /// What the route touches, for authorization.
    fn target(&self) -> crate::domain::Target<'_>;
}

/// The front of every router: who calls (401), which route (404, 400), whether they may (403).
/// On refusal, the log's route name and the error.
pub fn admit<R: Routes>(req: &Request, mode: AuthMode) -> Result<R, (&'static str, ApiError)> {
    let principal = principal(req, mode).map_err(|e| ("unauthenticated", e))?;
    let route = R::parse(req.raw_http_path()).map_err(|e| ("unmatched", e))?;
    authorize(&principal, route.target(), req.method()).map_err(|e| (route.template(), e))?;
    Ok(route)
}

/// The error items of the two refusals, kept here beside the rules.
pub(super) fn unauthenticated() -> ErrorItem {
    ErrorItem::new(
        "UNAUTHENTICATED",
        "the request carries no verified token; send a bearer JWT",
    )
}

pub(super) fn forbidden() -> ErrorItem {
    ErrorItem::new(
        "FORBIDDEN",
        "the token's roles do not cover this resource or this method",
    )
}
