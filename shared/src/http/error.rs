//! The one place where failures become HTTP statuses and the JSON error shape
//! `{"errors": [{"code", "message", "field"?, "name"?, ...}]}`.

use super::response::json_response;
use crate::domain::usage::MAX_WRITES_PER_REQUEST;
use crate::domain::{Allocation, LicenseChange, PoolRejection, UsageRejection};
use crate::store::idempotency::{Answer, Earlier};
use crate::store::{Outcome, RejectReason, Rejection, StoreError};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::Serialize;

/// The first error code of an error answer, in the response's extensions for the request's log
/// line and metrics.
#[derive(Clone, Copy, Debug)]
pub struct ErrorCode(pub &'static str);

/// One entry of the `errors` list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorItem {
    pub code: &'static str,
    pub message: String,
    /// JSON path of the offending value, e.g. `userServices[1].allocated.maximum`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The service or pack concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Usage that blocked a change, on usage conflicts.
    #[serde(rename = "inUse", skip_serializing_if = "Option::is_none")]
    pub in_use: Option<u32>,
    /// Groups holding it unlimited, when they block a change.
    #[serde(rename = "unlimitedGroups", skip_serializing_if = "Option::is_none")]
    pub unlimited_groups: Option<u32>,
    /// The licensed maximum (the tenant's, on pool conflicts), when it is what blocked a change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maximum: Option<u32>,
    /// What is left in the tenant's pool, on pool conflicts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub available: Option<u64>,
    /// What the tenant's groups hold, when a tenant maximum would fall below it.
    #[serde(rename = "currentlyAllocated", skip_serializing_if = "Option::is_none")]
    pub currently_allocated: Option<u64>,
    /// Rarer fields, boxed to keep the item (and every `Result` carrying one) small.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub about: Option<Box<About>>,
}

/// What only some refusals say.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct About {
    /// The pack a refused service would have come through.
    #[serde(rename = "servicePack", skip_serializing_if = "Option::is_none")]
    pub service_pack: Option<String>,
    /// The user a refused item of a bulk assignment is for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Where to list who holds a license whose usage blocked a change (`BELOW_USAGE`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holders: Option<String>,
}

impl ErrorItem {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            field: None,
            name: None,
            in_use: None,
            unlimited_groups: None,
            maximum: None,
            available: None,
            currently_allocated: None,
            about: None,
        }
    }

    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    pub fn user(mut self, user_id: impl Into<String>) -> Self {
        self.about.get_or_insert_default().user_id = Some(user_id.into());
        self
    }

    pub fn through(mut self, pack: impl Into<String>) -> Self {
        self.about.get_or_insert_default().service_pack = Some(pack.into());
        self
    }

    pub fn holders(mut self, path: impl Into<String>) -> Self {
        self.about.get_or_insert_default().holders = Some(path.into());
        self
    }

    /// `ALREADY_EXISTS`: a create whose name (at `field`) is taken; `what` says of what, e.g.
    /// "the tenant's service pack".
    pub fn already_exists(field: &str, what: &str, name: &str) -> Self {
        ErrorItem::new("ALREADY_EXISTS", format!("{what} {name:?} already exists"))
            .field(field)
            .name(name)
    }
}

/// Every way a request can fail, each with exactly one status.
#[derive(Debug)]
pub enum ApiError {
    /// 400: malformed or invalid input; nothing was changed.
    BadRequest(Vec<ErrorItem>),
    /// 401: no verified token.
    Unauthenticated,
    /// 403: the token does not cover the resource.
    Forbidden,
    /// 404: no route matches the path.
    NotFound,
    /// 404: the route exists but the resource it names does not; the message says which.
    NoSuch(String),
    /// 405: the route exists but not for this method (axum's router adds `Allow`).
    MethodNotAllowed,
    /// 409: the request is valid but stored state refuses it; nothing was changed.
    Conflict(Vec<ErrorItem>),
    /// 409 `CONCURRENT_UPDATE`: other requests kept changing the same items until the request's
    /// time ran out; nothing was changed, and a retry is safe.
    ConcurrentUpdate,
    /// 412: `If-Match` names a version that is no longer current; nothing was changed.
    PreconditionFailed,
    /// 422: the `Idempotency-Key` was used for another request.
    IdempotencyKeyReused,
    /// The answer an earlier request with the same `Idempotency-Key` got, given again.
    Replayed(Answer),
    /// 413: the body is larger than the route accepts.
    PayloadTooLarge { limit: usize },
    /// 503: storage could not be reached, or throttled; the caller may retry. `outcome` says
    /// whether a write may have been applied; `why` goes to the request's log line.
    Unavailable { outcome: Outcome, why: String },
    /// 503: the request ran past its deadline (`after`, the router's own) and was abandoned;
    /// the caller may retry.
    DeadlineExceeded { after: std::time::Duration },
    /// 500: a defect of ours (a handler panicked, DynamoDB refused a request we built, a broken
    /// invariant), logged with the request id. Never for anything a client sent.
    Internal(String),
}

/// What a 500 was about, for the request's log line (`front.rs`); never sent to the client.
#[derive(Clone, Debug)]
pub struct Defect(pub String);

/// Why storage was unavailable (a 503), for the request's log line; never sent to the client.
#[derive(Clone, Debug)]
pub struct Cause(pub String);

/// Marks a replayed answer (`Idempotent-Replayed: true`).
#[derive(Clone, Copy, Debug)]
pub struct Replay;

#[derive(Serialize)]
struct ErrorBody<'a> {
    errors: &'a [ErrorItem],
}

impl ApiError {
    pub fn bad_request(item: ErrorItem) -> Self {
        ApiError::BadRequest(vec![item])
    }

    /// A defect of ours, with what to log.
    pub fn internal(why: impl Into<String>) -> Self {
        ApiError::Internal(why.into())
    }

    /// A storage failure. `describe` names the request item of each rejection (only the handler
    /// knows which item an index stands for). Names the caller got wrong (a pack the tenant has
    /// not defined) make it a 400 listing those; other rejections are a 409.
    pub fn from_store(err: StoreError, describe: impl Fn(&Rejection) -> ErrorItem) -> Self {
        match err {
            StoreError::Rejected(rejections) => {
                let unknown = |r: &&Rejection| {
                    matches!(r.reason, RejectReason::Pool(PoolRejection::PackNotDefined))
                };
                if rejections.iter().any(|r| unknown(&r)) {
                    ApiError::BadRequest(rejections.iter().filter(unknown).map(describe).collect())
                } else {
                    ApiError::Conflict(rejections.iter().map(describe).collect())
                }
            }
            StoreError::Unavailable { outcome, why } => ApiError::Unavailable { outcome, why },
            StoreError::Defect(why) => ApiError::Internal(why),
            StoreError::TooManyWrites {
                needed,
                fit: Some(fit),
            } => ApiError::bad_request(too_many_for_one(&format!("up to {needed}"), Some(fit))),
            StoreError::TooManyWrites { needed, fit: None } => {
                ApiError::bad_request(ErrorItem::new(
                    "TOO_MANY_ITEMS",
                    format!(
                        "this request needs up to {needed} writes and one request makes at most {MAX_WRITES_PER_REQUEST} (one transaction): 2 per service, per pack 3 plus 2 per service of the pack, 1 for an Idempotency-Key and 1 for the audit record; split it"
                    ),
                ))
            }
            StoreError::TooManyChanges { changing } => ApiError::bad_request(ErrorItem::new(
                "TOO_MANY_ITEMS",
                format!(
                    "this request changes {changing} licenses and one request changes at most {} (one transaction); items equal to what is stored do not count; split it",
                    LicenseChange::MAX_PER_REQUEST
                ),
            )),
            StoreError::Contended => ApiError::ConcurrentUpdate,
            StoreError::PreconditionFailed => ApiError::PreconditionFailed,
            StoreError::Keyed(Earlier::Replay(answer)) => ApiError::Replayed(answer),
            StoreError::Keyed(Earlier::Reused) => ApiError::IdempotencyKeyReused,
        }
    }
}

/// `TOO_MANY_ITEMS` of a change of several users' assignments that `needs` ("up to 104")
/// actions of one transaction, of which the first `fit` users fit (when known): how the actions
/// are counted and how to split the request.
pub fn too_many_for_one(needs: &str, fit: Option<usize>) -> ErrorItem {
    let split = match fit {
        Some(0) => "the first user alone needs more: give that user's services and packs in several requests".to_owned(),
        Some(fit) => format!("the first {fit} users fit in one: send at most {fit} users of this kind per request"),
        None => "split it by users".to_owned(),
    };
    ErrorItem::new(
        "TOO_MANY_ITEMS",
        format!(
            "this request needs {needs} actions and one request is one transaction of at most {MAX_WRITES_PER_REQUEST}: per user 1 per service and per pack 1 plus 1 per service of the pack; per request 1 per license it moves, 1 per pack (its definition), 1 for the blocked services (assignments), 1 for an Idempotency-Key and 1 for the audit record (e.g. 47 users with 2 services each, 96 with 1, or 23 users with a pack of 3); {split}"
        ),
    )
}

/// A storage failure of an operation whose rejections need no request context (a write that
/// names its refused items maps them with [`ApiError::from_store`]).
impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        ApiError::from_store(err, |r| usage_error(&r.reason, "the request"))
    }
}

/// How a tenant allocation reads in a sentence.
fn allocation_text(allocation: Allocation) -> String {
    match allocation {
        Allocation::Unlimited => "unlimited".to_owned(),
        Allocation::Limited(m) => format!("maximum {m}"),
    }
}

/// The error item of a usage rule that refused `name`.
pub fn usage_error(reason: &RejectReason, name: &str) -> ErrorItem {
    let item = |code, message: String| ErrorItem::new(code, message).name(name);
    match reason {
        RejectReason::ThroughPack {
            service,
            pack,
            reason,
        } => {
            let item = usage_error(&RejectReason::Usage(reason.clone()), service.name());
            ErrorItem {
                message: format!("{} (through the service pack {pack})", item.message),
                ..item.through(pack.as_str())
            }
        }
        RejectReason::BelowUsage { in_use } => ErrorItem {
            in_use: Some(*in_use),
            ..item(
                "BELOW_USAGE",
                format!("{name} has {in_use} in use; the new allocation is below that"),
            )
        },
        RejectReason::Usage(UsageRejection::NotLicensed) => item(
            "NOT_LICENSED",
            format!("{name} is not licensed to the group"),
        ),
        RejectReason::Usage(UsageRejection::OverLimit { maximum, in_use }) => ErrorItem {
            in_use: Some(*in_use),
            maximum: Some(*maximum),
            ..item(
                "OVER_LIMIT",
                if in_use < maximum {
                    // A bulk request with more new holders than there is room for.
                    format!(
                        "only {} of the {maximum} licensed units of {name} are free, fewer than the request's new holders",
                        maximum - in_use
                    )
                } else {
                    format!("all {maximum} licensed units of {name} are in use")
                },
            )
        },
        RejectReason::Usage(UsageRejection::HasInstances { in_use }) => ErrorItem {
            in_use: Some(*in_use),
            ..item(
                "HAS_INSTANCES",
                format!("{name} still has {in_use} instance(s) and cannot be unassigned"),
            )
        },
        RejectReason::Usage(UsageRejection::InstanceExists) => item(
            "INSTANCE_EXISTS",
            format!("an instance of that name already exists for {name}"),
        ),
        RejectReason::Usage(UsageRejection::NoMoreAssignable) => item(
            "NO_MORE_ASSIGNABLE",
            format!("{name} is configured as no longer assignable"),
        ),
        RejectReason::Pool(PoolRejection::Exhausted {
            tenant_maximum,
            available,
        }) => ErrorItem {
            maximum: Some(*tenant_maximum),
            available: Some(*available),
            ..item(
                "POOL_EXHAUSTED",
                format!(
                    "the tenant's pool of {name} is {tenant_maximum}, of which {available} is left"
                ),
            )
        },
        RejectReason::Pool(PoolRejection::NotUnlimited { tenant_maximum }) => ErrorItem {
            maximum: Some(*tenant_maximum),
            ..item(
                "POOL_NOT_UNLIMITED",
                format!(
                    "a group may hold {name} unlimited only while the tenant does; the tenant holds {tenant_maximum}"
                ),
            )
        },
        RejectReason::Pool(PoolRejection::BelowAllocated {
            currently_allocated,
        }) => ErrorItem {
            currently_allocated: Some(*currently_allocated),
            ..item(
                "BELOW_ALLOCATED",
                format!(
                    "the tenant's groups hold {currently_allocated} of {name}; the maximum cannot go below that"
                ),
            )
        },
        RejectReason::Pool(PoolRejection::GroupHoldsUnlimited { groups }) => item(
            "GROUP_HOLDS_UNLIMITED",
            format!(
                "{groups} group(s) hold {name} unlimited, so the tenant's allocation must stay unlimited"
            ),
        ),
        RejectReason::Pool(PoolRejection::PackNotDefined) => item(
            "UNKNOWN_PACK",
            format!("the tenant has not defined the service pack {name}"),
        ),
        RejectReason::Pool(PoolRejection::NotLicensedToTenant) => item(
            "NOT_LICENSED_TO_TENANT",
            format!(
                "the tenant holds no allocation of {name}; a tenant admin may license a group only what the operator allocated to the tenant"
            ),
        ),
        RejectReason::Pool(PoolRejection::PackInUse {
            currently_allocated,
            unlimited_groups,
            tenant,
        }) => {
            let mut holders = Vec::new();
            if *currently_allocated > 0 || *unlimited_groups > 0 {
                holders.push(format!(
                    "licensed to the tenant's groups ({currently_allocated} limited units in all, {unlimited_groups} group(s) unlimited)"
                ));
            }
            if let Some(allocation) = tenant {
                holders.push(format!(
                    "allocated to the tenant by the operator ({})",
                    allocation_text(*allocation)
                ));
            }
            let held = if holders.is_empty() {
                "in use".to_owned()
            } else {
                holders.join(" and ")
            };
            let fix = if tenant.is_some() {
                "unlicense it in every group and have the operator remove the tenant allocation (\"allocated\": null) first"
            } else {
                "unlicense it in every group first"
            };
            ErrorItem {
                currently_allocated: Some(*currently_allocated),
                unlimited_groups: Some(*unlimited_groups),
                maximum: tenant.and_then(Allocation::maximum),
                ..item(
                    "PACK_IN_USE",
                    format!("the service pack {name} is {held}: {fix}"),
                )
            }
        }
    }
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthenticated => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::NotFound | ApiError::NoSuch(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) | ApiError::ConcurrentUpdate => StatusCode::CONFLICT,
            ApiError::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            ApiError::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Replayed(answer) => {
                StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK)
            }
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unavailable { .. } | ApiError::DeadlineExceeded { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// An earlier answer given again: its status and body, marked `Idempotent-Replayed: true`.
pub fn replay(answer: Answer) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    let empty = answer.body.is_empty();
    let mut response = Response::new(axum::body::Body::from(answer.body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if !empty {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    response.extensions_mut().insert(Replay);
    response
}

impl axum::response::IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Replayed(answer) = self {
            return replay(answer);
        }
        let status = self.status();
        let single;
        let items: &[ErrorItem] = match &self {
            ApiError::BadRequest(items) | ApiError::Conflict(items) => items,
            ApiError::Unauthenticated => {
                single = [ErrorItem::new(
                    "UNAUTHENTICATED",
                    "the request carries no verified token; send a bearer JWT",
                )];
                &single
            }
            ApiError::Forbidden => {
                single = [ErrorItem::new(
                    "FORBIDDEN",
                    "the token's roles do not cover this resource or this method",
                )];
                &single
            }
            ApiError::NotFound => {
                single = [ErrorItem::new("NOT_FOUND", "no route matches this path")];
                &single
            }
            ApiError::NoSuch(what) => {
                single = [ErrorItem::new("NOT_FOUND", what.as_str())];
                &single
            }
            ApiError::MethodNotAllowed => {
                single = [ErrorItem::new(
                    "METHOD_NOT_ALLOWED",
                    "this path does not serve this method; the Allow header lists those it does",
                )];
                &single
            }
            ApiError::ConcurrentUpdate => {
                single = [ErrorItem::new(
                    "CONCURRENT_UPDATE",
                    "other requests kept changing the same items; nothing was changed, retry",
                )];
                &single
            }
            ApiError::PreconditionFailed => {
                single = [ErrorItem::new(
                    "PRECONDITION_FAILED",
                    "If-Match does not match the current ETag: it changed since it was read; nothing was changed, read it again",
                )];
                &single
            }
            ApiError::IdempotencyKeyReused => {
                single = [ErrorItem::new(
                    "IDEMPOTENCY_KEY_REUSED",
                    "this Idempotency-Key was used for another request (method, path or body differ); use a new key",
                )];
                &single
            }
            ApiError::PayloadTooLarge { limit } => {
                single = [ErrorItem::new(
                    "PAYLOAD_TOO_LARGE",
                    format!("request body is larger than {limit} bytes"),
                )];
                &single
            }
            ApiError::Unavailable {
                outcome: Outcome::NotWritten,
                ..
            } => {
                single = [ErrorItem::new(
                    "STORAGE_UNAVAILABLE",
                    "storage is unavailable; nothing was changed, retry later",
                )];
                &single
            }
            ApiError::Unavailable {
                outcome: Outcome::Unknown,
                ..
            } => {
                single = [ErrorItem::new(
                    "STORAGE_UNAVAILABLE",
                    "storage did not confirm the write: it may or may not have been applied; retry with the same Idempotency-Key, or read before retrying",
                )];
                &single
            }
            ApiError::DeadlineExceeded { after } => {
                // The router's own deadline: whole seconds in Lambda, less in tests.
                let within = if after.subsec_millis() == 0 {
                    format!("{} s", after.as_secs())
                } else {
                    format!("{} ms", after.as_millis())
                };
                single = [ErrorItem::new(
                    "DEADLINE_EXCEEDED",
                    format!(
                        "the request did not finish within {within} and was abandoned; a write may or may not have been applied, so read before retrying"
                    ),
                )];
                &single
            }
            ApiError::Internal(_) => {
                single = [ErrorItem::new(
                    "INTERNAL",
                    "an unexpected error occurred; it has been logged",
                )];
                &single
            }
            ApiError::Replayed(_) => &[], // answered above
        };
        let code = items.first().map(|item| ErrorCode(item.code));
        let mut response = json_response(status, &ErrorBody { errors: items });
        if let Some(code) = code {
            response.extensions_mut().insert(code);
        }
        match self {
            ApiError::Unauthenticated => {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::Unavailable { why, .. } => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                response.extensions_mut().insert(Cause(why));
            }
            ApiError::DeadlineExceeded { .. } => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            ApiError::Internal(why) => {
                response.extensions_mut().insert(Defect(why));
            }
            _ => {}
        }
        response
    }
}
