//! The local server of `make run` and the tests: both functions' routers on one port, served by
//! `axum::serve` with no emulator in the request path.
//!
//! It plays the two parts of API Gateway the functions rely on:
//! - routing, as `template.yaml` does: `/api/v1/configs/user_services` and everything under it
//!   to the user-services router, every other path to the licenses router;
//! - the JWT authorizer, **without verifying anything**: a bearer token's claims are decoded and
//!   handed on as `requestContext.authorizer.jwt`, flattened to strings as API Gateway does; no
//!   token means an operator. This is for local development only, and it is why this code lives
//!   here and not in the Lambda binaries, which never read the `Authorization` header.

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use base64::Engine;
use lambda_http::aws_lambda_events::apigw::{
    ApiGatewayRequestAuthorizer, ApiGatewayRequestAuthorizerJwtDescription,
    ApiGatewayV2httpRequestContext,
};
use lambda_http::request::RequestContext;
use licensing::http::response::json_response;
use licensing::http::{front, licenses, user_services};
use licensing::store::dynamo::DynamoConfigStore;
use licensing::store::dynamo::DynamoStore;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use tower::ServiceExt;

/// The prefix API Gateway routes to the user-services function (template.yaml).
const USER_SERVICES_PREFIX: &str = "/api/v1/configs/user_services";

pub mod docs;

/// Both routers behind the local authorizer, and the API reference at `/docs` when `docs` says
/// where its files are.
pub fn app(store: DynamoStore, configs: DynamoConfigStore, docs: Option<docs::Docs>) -> Router {
    let licenses = licenses::router(store, configs.clone(), front::DEADLINE);
    let user_services = user_services::router(configs, front::DEADLINE);
    let gateway = tower::service_fn(move |req: Request| {
        let function = if serves_user_services(req.uri().path()) {
            user_services.clone()
        } else {
            licenses.clone()
        };
        function.oneshot(req)
    });
    let reference = docs.map(docs::router).unwrap_or_default();
    reference
        .fallback_service(gateway)
        .layer(middleware::from_fn(local_authorizer))
}

/// The template's routes of the user-services function: the bare prefix and everything below.
fn serves_user_services(path: &str) -> bool {
    path.strip_prefix(USER_SERVICES_PREFIX)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// What the local authorizer makes of a request's `Authorization` header.
pub fn claims_of(authorization: Option<&str>) -> Result<HashMap<String, String>, &'static str> {
    let Some(value) = authorization else {
        return Ok(HashMap::from([
            ("sub".to_owned(), "local".to_owned()),
            ("scope".to_owned(), "licenses/operator".to_owned()),
        ]));
    };
    let token = value
        .strip_prefix("Bearer ")
        .ok_or("the Authorization header is not a bearer token")?;
    let payload = token.split('.').nth(1).ok_or("the token is not a JWT")?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| "the token's payload is not base64url")?;
    let Ok(Value::Object(claims)) = serde_json::from_slice(&bytes) else {
        return Err("the token's payload is not a JSON object");
    };
    Ok(claims
        .into_iter()
        .map(|(name, value)| (name, flatten(value)))
        .collect())
}

/// A claim as API Gateway hands it to the function: strings as they are, arrays as `[a b]`,
/// anything else as its JSON text.
fn flatten(value: Value) -> String {
    match value {
        Value::String(s) => s,
        Value::Array(items) => {
            let items: Vec<String> = items.into_iter().map(flatten).collect();
            format!("[{}]", items.join(" "))
        }
        other => other.to_string(),
    }
}

/// A request id, as API Gateway gives each request one: the client's `x-request-id` if it sent
/// one, else a new one. The front logs it on the request's line (with what went wrong, on a 500).
fn request_id(req: &mut Request) {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    if !req.headers().contains_key("x-request-id") {
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let id = format!("local-{started:x}-{}", NEXT.fetch_add(1, Ordering::Relaxed));
        if let Ok(value) = HeaderValue::from_str(&id) {
            req.headers_mut().insert("x-request-id", value);
        }
    }
}

async fn local_authorizer(mut req: Request, next: Next) -> Response {
    request_id(&mut req);
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or_default());
    let claims = match claims_of(header) {
        Ok(claims) => claims,
        // API Gateway's authorizer refuses such a request before any function runs; locally it
        // gets the API's own 401.
        Err(why) => return unauthorized(why),
    };
    let mut jwt = ApiGatewayRequestAuthorizerJwtDescription::default();
    jwt.claims = claims;
    let mut authorizer = ApiGatewayRequestAuthorizer::default();
    authorizer.jwt = Some(jwt);
    let mut context = ApiGatewayV2httpRequestContext::default();
    context.authorizer = Some(authorizer);
    req.extensions_mut()
        .insert(RequestContext::ApiGatewayV2(context));
    next.run(req).await
}

/// The API's 401, with why the token was refused.
fn unauthorized(why: &str) -> Response {
    let body = serde_json::json!({"errors": [{"code": "UNAUTHENTICATED", "message": why}]});
    let mut response = json_response(StatusCode::UNAUTHORIZED, &body);
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(payload: &str) -> String {
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!("Bearer {}.{}.sig", b64(r#"{"alg":"none"}"#), b64(payload))
    }

    #[test]
    fn claims_are_flattened_to_strings_as_api_gateway_does() {
        let claims = claims_of(Some(&token(
            r#"{"scp":["licenses/tenant-admin","openid"],"tenant_id":"acme","exp":1795435200}"#,
        )))
        .unwrap();
        assert_eq!(claims["scp"], "[licenses/tenant-admin openid]");
        assert_eq!(claims["tenant_id"], "acme");
        assert_eq!(claims["exp"], "1795435200");
    }

    #[test]
    fn no_token_is_an_operator_and_a_bad_one_is_refused() {
        assert_eq!(claims_of(None).unwrap()["scope"], "licenses/operator");
        assert!(claims_of(Some("Basic abc")).is_err());
        assert!(claims_of(Some("Bearer not-a-jwt")).is_err());
        assert!(claims_of(Some("Bearer a.%%%.c")).is_err());
    }
}
