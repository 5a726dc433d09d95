//! The router of the user-services function: the operator-defined configuration of user
//! services ([`configs`]). [`Route`] is the one list of its routes; every one touches the
//! configuration, which `domain/access.rs` lets every role read and only operators write.

use super::auth::Caller;
use super::error::ApiError;
use super::front;
use super::path::PathIds;
use super::{audit, configs};
use crate::domain::Target;
use crate::store::dynamo::DynamoConfigStore;
use crate::store::idempotency::KeepsRecords;
use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::MethodRouter;
use std::time::Duration;

front::route_enum!(
    /// Every route of the user-services function.
    Configs,
    Config,
    Audit,
);

impl Route {
    pub fn path(self) -> &'static str {
        match self {
            Route::Configs => configs::COLLECTION,
            Route::Config => configs::ITEM,
            Route::Audit => audit::CONFIGS_TRAIL,
        }
    }

    fn methods(self) -> MethodRouter<DynamoConfigStore> {
        match self {
            Route::Configs => configs::collection(),
            Route::Config => configs::item(),
            Route::Audit => audit::configs_trail(),
        }
    }

    fn target(self) -> Target<'static> {
        match self {
            Route::Configs | Route::Config => Target::Configs,
            Route::Audit => Target::ConfigsAudit,
        }
    }
}

/// Every route of the user-services function, each with and without its trailing slash.
pub fn router(store: DynamoConfigStore, deadline: Duration) -> Router {
    let records = store.idempotency_records();
    let mut routes = Router::new();
    for &route in Route::ALL {
        routes = routes.merge(
            front::route(route.path(), route.methods(), records.clone())
                .route_layer(middleware::from_fn_with_state(route, authorize)),
        );
    }
    front::finish(routes.with_state(store), deadline)
}

async fn authorize(
    State(route): State<Route>,
    caller: Caller,
    ids: Result<PathIds, ApiError>,
    req: Request,
    next: Next,
) -> Response {
    let verdict = ids.and_then(|ids| {
        caller.check(route.target(), req.method())?;
        Ok(ids)
    });
    front::admit(route.path(), verdict, req, next).await
}
