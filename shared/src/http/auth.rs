//! The caller, from the claims and scopes of the JWT that API Gateway verified
//! (`requestContext.authorizer.jwt`, which lambda_http puts in the request's extensions). The
//! functions never see an unverified token: in AWS the HTTP API's JWT authorizer rejects those
//! before the function runs, and the functions never read the `Authorization` header.
//!
//! Claims arrive as API Gateway delivers them: a flat map of strings (numbers as strings, an
//! array flattened to `"[a b]"`), and `jwt.scopes` is `null` on routes without authorization
//! scopes, so the `scope`/`scp` claim is read as well.

use super::error::ApiError;
use crate::domain::access::{GROUP_ADMIN_SCOPE, OPERATOR_SCOPE, TENANT_ADMIN_SCOPE};
use crate::domain::{Action, GroupId, GroupRef, Principal, Role, TenantId};
use axum::extract::{FromRequestParts, Request};
use axum::http::Method;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use lambda_http::request::RequestContext;

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

/// The scopes of a verified token: `jwt.scopes` when API Gateway filled it, else the `scope` or
/// `scp` claim in any of the forms it arrives in: `"a b"`, a JSON array `["a","b"]`, or the
/// flattened `"[a b]"`.
pub fn scopes(jwt_scopes: Option<&[String]>, claim: Option<&str>) -> Vec<String> {
    if let Some(scopes) = jwt_scopes.filter(|s| !s.is_empty()) {
        return scopes.to_vec();
    }
    let claim = claim.unwrap_or_default().trim();
    if let Some(inner) = claim.strip_prefix('[').and_then(|c| c.strip_suffix(']')) {
        if let Ok(list) = serde_json::from_str::<Vec<String>>(claim) {
            return list;
        }
        return inner.split_whitespace().map(str::to_owned).collect();
    }
    claim.split_whitespace().map(str::to_owned).collect()
}

/// The caller's roles, or `None` when the request carries no verified claims.
pub fn principal(context: Option<&RequestContext>) -> Option<Principal> {
    let jwt = match context {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.authorizer.as_ref()?.jwt.as_ref()?,
        _ => return None,
    };
    let claim = |name: &str| jwt.claims.get(name).map(String::as_str);
    let scopes = scopes(
        jwt.scopes.as_deref(),
        claim("scope").or_else(|| claim("scp")),
    );
    let tenant = claim("tenant_id").and_then(|t| TenantId::parse(t).ok());
    let group = claim("group_id").and_then(|g| GroupId::parse(g).ok());
    let mut roles = Vec::new();
    for scope in &scopes {
        match (scope.as_str(), &tenant, &group) {
            (OPERATOR_SCOPE, _, _) => roles.push(Role::Operator),
            (TENANT_ADMIN_SCOPE, Some(t), _) => roles.push(Role::TenantAdmin(t.clone())),
            (GROUP_ADMIN_SCOPE, Some(t), Some(g)) => roles.push(Role::GroupAdmin(GroupRef {
                tenant: t.clone(),
                group: g.clone(),
            })),
            _ => {}
        }
    }
    Some(Principal::new(roles))
}

/// The front's first check, before any route is matched (401 before 404): a request without
/// verified claims goes no further; otherwise its [`Principal`] travels in the extensions.
pub async fn require_caller(mut req: Request, next: Next) -> Response {
    let context = req.extensions().get::<RequestContext>();
    let Some(principal) = principal(context) else {
        return ApiError::Unauthenticated.into_response();
    };
    let who = Who {
        sub: sub(context).unwrap_or("-").to_owned(),
        role: principal.role_name(),
    };
    req.extensions_mut().insert(principal);
    req.extensions_mut().insert(who.clone());
    let mut response = next.run(req).await;
    response.extensions_mut().insert(who);
    response
}

/// Who the verified caller is, as audit records and log lines name it: its `sub` claim and
/// broadest role. In the request's extensions (for the write's audit record) and the
/// response's (for the log line).
#[derive(Debug, Clone)]
pub struct Who {
    pub sub: String,
    pub role: &'static str,
}

fn sub(context: Option<&RequestContext>) -> Option<&str> {
    match context {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx
            .authorizer
            .as_ref()?
            .jwt
            .as_ref()?
            .claims
            .get("sub")
            .map(String::as_str),
        _ => None,
    }
}

/// The verified caller of a request that passed [`require_caller`].
pub struct Caller(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .map(Caller)
            .ok_or(ApiError::Unauthenticated)
    }
}

impl Caller {
    /// 403 unless the caller may act on `target` with `method`.
    pub fn check(
        &self,
        target: crate::domain::Target<'_>,
        method: &Method,
    ) -> Result<(), ApiError> {
        if self.0.may(target, Action::of(method)) {
            Ok(())
        } else {
            Err(ApiError::Forbidden)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn scopes_come_from_every_delivered_form() {
        let want = strings(&["licenses/operator", "openid"]);
        assert_eq!(scopes(Some(&want), Some("ignored")), want);
        assert_eq!(scopes(Some(&[]), Some("licenses/operator openid")), want);
        assert_eq!(scopes(None, Some("licenses/operator openid")), want);
        assert_eq!(scopes(None, Some("[licenses/operator openid]")), want);
        assert_eq!(
            scopes(None, Some(r#"["licenses/operator","openid"]"#)),
            want
        );
        assert!(scopes(None, None).is_empty());
        assert!(scopes(None, Some("[]")).is_empty());
    }
}
