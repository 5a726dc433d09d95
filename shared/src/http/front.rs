//! The front every function's router wears, outermost first:
//!
//! 1. one JSON log line and one EMF document per request ([`log_line`]);
//! 2. a panic in a handler becomes a JSON 500 and the function goes on serving;
//! 3. one deadline per request ([`DEADLINE`]): past it, a 503 JSON error, well before the
//!    function's 10 s timeout would make API Gateway answer its own 500;
//! 4. 401 before anything else ([`auth::require_caller`]);
//! 5. a path API Gateway cut at a decoded `?` or `#` is a 400 ([`refuse_cut_path`]);
//! 6. an unmatched path is the JSON 404.
//!
//! Each function's router also answers a wrong method with [`method_not_allowed`], the JSON 405
//! to which axum adds `Allow`.

use super::auth::{self, Who};
use super::error::{ApiError, Cause, Defect, ErrorCode, ErrorItem};
use super::idempotency::idempotent;
use super::metrics::RequestMetrics;
use super::path::PathIds;
use crate::store::idempotency::Records;
use crate::store::meter;
use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use lambda_http::RequestExt;
use std::time::{Duration, Instant};
use tower_http::catch_panic::CatchPanicLayer;

/// How long one request may take. The function's timeout is 10 s (template.yaml); the SDK
/// gives up on DynamoDB after 5 s.
pub const DEADLINE: Duration = Duration::from_secs(8);

/// Wraps a function's routes in the front, with the given deadline ([`DEADLINE`] in Lambda).
pub fn finish(routes: Router, deadline: Duration) -> Router {
    routes
        .fallback(|| async { ApiError::NotFound })
        .layer(middleware::from_fn(refuse_cut_path))
        .layer(middleware::from_fn(auth::require_caller))
        .layer(middleware::from_fn(move |req: Request, next: Next| {
            within(deadline, req, next)
        }))
        .layer(CatchPanicLayer::custom(|_panic| {
            ApiError::internal("a handler panicked").into_response()
        }))
        .layer(middleware::from_fn(log_line))
}

/// Declares a function's `Route` enum and `Route::ALL` from one list, so that no route can be
/// missing from what the router registers; the enum's `match`es then make every route name its
/// path, handlers and authorization target, or fail to compile.
macro_rules! route_enum {
    ($(#[$doc:meta])* $($variant:ident),+ $(,)?) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Route {
            $($variant),+
        }

        impl Route {
            /// Every route, each registered once.
            pub const ALL: &'static [Route] = &[$(Route::$variant),+];
        }
    };
}
pub(crate) use route_enum;

/// One route of a function: its methods (any other is the JSON 405 with `Allow`), with and
/// without the trailing slash, behind the `Idempotency-Key` layer. The caller adds its
/// authorization layer on top, which so runs first, before the 405.
pub fn route<St: Clone + Send + Sync + 'static>(
    path: &str,
    methods: MethodRouter<St>,
    records: Records,
) -> Router<St> {
    Router::new()
        .route_both(path, methods.fallback(method_not_allowed))
        .route_layer(middleware::from_fn_with_state(records, idempotent))
}

/// Routes served with and without a trailing slash: paths are documented with one, and axum
/// matches the two forms as different paths.
pub trait RouteBoth {
    type Methods;
    fn route_both(self, path: &str, methods: Self::Methods) -> Self;
}

impl<St: Clone + Send + Sync + 'static> RouteBoth for Router<St> {
    type Methods = MethodRouter<St>;

    fn route_both(self, path: &str, methods: MethodRouter<St>) -> Self {
        self.route(path, methods.clone())
            .route(&format!("{path}/"), methods)
    }
}

/// The route template of a request and its response, for the log line and audit records; set
/// by [`admit`], which runs once a route matched.
#[derive(Clone, Debug)]
pub struct RouteTemplate(pub String);

/// The tenant and group of a matched route's path, in the response's extensions for the log
/// line; set by [`admit`].
#[derive(Clone, Debug, Default)]
struct Place {
    tenant: Option<String>,
    group: Option<String>,
}

/// The request's id (API Gateway's in AWS, the local server's under `make run`), in the
/// request's extensions for audit records.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// The end of each function's authorization layer: with `verdict` `Ok`, the request goes on,
/// its parsed ids in its extensions for the handler's path extractor; otherwise the refusal is
/// the answer. Either way the response remembers its route for the log line.
pub async fn admit(
    template: &'static str,
    verdict: Result<PathIds, ApiError>,
    mut req: Request,
    next: Next,
) -> Response {
    let route = RouteTemplate(format!("{template}/"));
    let mut place = Place::default();
    let mut response = match verdict {
        Ok(ids) => {
            place = Place {
                tenant: ids.tenant.as_ref().map(|t| t.as_str().to_owned()),
                group: ids.group.as_ref().map(|g| g.group.as_str().to_owned()),
            };
            req.extensions_mut().insert(ids);
            req.extensions_mut().insert(route.clone());
            next.run(req).await
        }
        Err(refusal) => refusal.into_response(),
    };
    response.extensions_mut().insert(place);
    response.extensions_mut().insert(route);
    response
}

/// API Gateway hands over `rawPath` percent-decoded, so a client's `%3F` or `%23` arrives as
/// `?` or `#`, and the URI lambda_http builds from it ends the path there: `.../Sales%3Fold/`
/// would address `.../Sales`. No id may hold either character, so such a path is refused whole.
/// (Locally the encoded character stays inside its segment, where the id parse refuses it.)
async fn refuse_cut_path(req: Request, next: Next) -> Response {
    if req.raw_http_path().contains(['?', '#']) {
        return ApiError::bad_request(ErrorItem::new(
            "INVALID_PATH",
            "the path holds an encoded '?' or '#', which no id may contain",
        ))
        .into_response();
    }
    next.run(req).await
}

/// When the request must have answered: in the request's extensions for the handlers, whose
/// writes hand it to the store ([`super::write::Write`]), so retries stop in time.
#[derive(Clone, Copy, Debug)]
pub struct Deadline(pub Instant);

/// The request's deadline.
async fn within(deadline: Duration, mut req: Request, next: Next) -> Response {
    req.extensions_mut()
        .insert(Deadline(Instant::now() + deadline));
    match tokio::time::timeout(deadline, next.run(req)).await {
        Ok(response) => response,
        Err(_) => ApiError::DeadlineExceeded { after: deadline }.into_response(),
    }
}

/// The handler of a matched path with a method it does not serve; axum sets `Allow`.
pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// One JSON line and one EMF document ([`metrics`]) per request: method, route template,
/// status, latency, request and trace ids, the caller's `sub` and role, the tenant and group
/// of the path, the error code of a refusal, and the store's round trips and retries. No
/// bodies, no tokens.
async fn log_line(mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    // In a block: a borrow of the request (not `Sync`) must not live across the await.
    let (request_id, trace_id) = {
        let context = req.lambda_context_ref();
        let header = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        // API Gateway's id (the one its access logs and clients' `apigw-requestid` show), else
        // the invocation's, else the local server's.
        let gateway = match req.request_context_ref() {
            Some(lambda_http::request::RequestContext::ApiGatewayV2(c)) => c.request_id.clone(),
            _ => None,
        };
        let request_id = gateway
            .or_else(|| context.map(|c| c.request_id.clone()))
            .or_else(|| header("x-request-id"))
            .unwrap_or_default();
        let trace_id = context
            .and_then(|c| c.xray_trace_id.clone())
            .or_else(|| header("x-amzn-trace-id"));
        (request_id, trace_id)
    };
    req.extensions_mut().insert(RequestId(request_id.clone()));
    let (response, counts) = meter::measure(next.run(req)).await;
    let template = response
        .extensions()
        .get::<RouteTemplate>()
        .map_or("unmatched", |r| r.0.as_str());
    let route = format!("{method} {template}");
    let status = response.status().as_u16();
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    let who = response.extensions().get::<Who>();
    let place = response
        .extensions()
        .get::<Place>()
        .cloned()
        .unwrap_or_default();
    let error_code = response.extensions().get::<ErrorCode>().map(|c| c.0);
    macro_rules! line {
        ($level:ident, $($error:tt)*) => {
            tracing::$level!(
                method = %method,
                route = template,
                status,
                latency_ms,
                request_id = %request_id,
                trace_id = trace_id.as_deref(),
                sub = who.map(|w| w.sub.as_str()),
                role = who.map(|w| w.role),
                tenant_id = place.tenant.as_deref(),
                group_id = place.group.as_deref(),
                error_code,
                round_trips = counts.round_trips,
                retries = counts.retries,
                $($error)*
                "request"
            )
        };
    }
    if let Some(Defect(why)) = response.extensions().get::<Defect>() {
        // A defect is logged once, on the request's own line, with what went wrong.
        line!(error, error = %why,);
    } else if let Some(Cause(why)) = response.extensions().get::<Cause>() {
        // Storage unavailable: the client was told to retry; the operator sees why.
        line!(warn, error = %why,);
    } else {
        line!(info,);
    }
    RequestMetrics {
        route: &route,
        status,
        latency_ms,
        counts,
        error_code,
        request_id: &request_id,
        trace_id: trace_id.as_deref(),
    }
    .emit();
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::get;
    use lambda_http::aws_lambda_events::apigw::{
        ApiGatewayRequestAuthorizer, ApiGatewayRequestAuthorizerJwtDescription,
        ApiGatewayV2httpRequestContext,
    };
    use lambda_http::request::RequestContext;
    use tower::ServiceExt;

    fn operator_request(path: &str) -> Request {
        let mut jwt = ApiGatewayRequestAuthorizerJwtDescription::default();
        jwt.claims
            .insert("scope".into(), "licenses/operator".into());
        let mut authorizer = ApiGatewayRequestAuthorizer::default();
        authorizer.jwt = Some(jwt);
        let mut context = ApiGatewayV2httpRequestContext::default();
        context.authorizer = Some(authorizer);
        let mut req = Request::new(Body::empty());
        *req.uri_mut() = path.parse().expect("a path");
        req.extensions_mut()
            .insert(RequestContext::ApiGatewayV2(context));
        req
    }

    async fn json(response: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .expect("a body");
        serde_json::from_slice(&bytes).expect("JSON")
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_a_json_500_and_serving_goes_on() {
        let router = finish(
            Router::new()
                .route(
                    "/boom",
                    get(|| async {
                        if true {
                            panic!("a defect");
                        }
                    }),
                )
                .route("/ok", get(|| async { "ok" })),
            DEADLINE,
        );
        let response = router
            .clone()
            .oneshot(operator_request("/boom"))
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            axum::http::StatusCode::INTERNAL_SERVER_ERROR
        );
        assert_eq!(json(response).await["errors"][0]["code"], "INTERNAL");
        let next = router.oneshot(operator_request("/ok")).await.unwrap();
        assert_eq!(next.status(), axum::http::StatusCode::OK);
    }

    #[tokio::test]
    async fn without_claims_every_path_is_a_401_before_any_404() {
        let router = finish(Router::new().route("/ok", get(|| async { "ok" })), DEADLINE);
        for path in ["/ok", "/nowhere"] {
            let mut req = operator_request(path);
            req.extensions_mut().remove::<RequestContext>();
            let response = router.clone().oneshot(req).await.unwrap();
            assert_eq!(
                response.status(),
                axum::http::StatusCode::UNAUTHORIZED,
                "{path}"
            );
        }
        let response = router.oneshot(operator_request("/nowhere")).await.unwrap();
        assert_eq!(json(response).await["errors"][0]["code"], "NOT_FOUND");
    }
}
