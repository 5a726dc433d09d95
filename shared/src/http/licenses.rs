//! The router of the licenses function. [`Route`] is the one list of its routes (declared with
//! `front::route_enum!`, which lists `Route::ALL` from the same names): each with its path, its
//! handlers (the resource files' fragments) and the resource it touches, which
//! `domain/access.rs` decides on per role. A route without an arm in any of the three matches
//! does not compile.

use super::auth::Caller;
use super::error::ApiError;
use super::front;
use super::path::PathIds;
use super::state::Licensing;
use super::{audit, group_licenses, packs, tenant_licenses, usage, users};
use crate::domain::Target;
use crate::store::dynamo::{DynamoConfigStore, DynamoStore};
use crate::store::idempotency::KeepsRecords;
use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::MethodRouter;
use std::sync::Arc;
use std::time::Duration;

front::route_enum!(
    /// Every route of the licenses function.
    TenantLicenses,
    Packs,
    Pack,
    GroupLicenses,
    GroupServices,
    Instances,
    Instance,
    UserServices,
    Users,
    BulkServices,
    Holders,
    Audit,
);

impl Route {
    /// The route's template (served with and without a trailing slash).
    pub fn path(self) -> &'static str {
        match self {
            Route::TenantLicenses => tenant_licenses::PATH,
            Route::Packs => packs::COLLECTION,
            Route::Pack => packs::ITEM,
            Route::GroupLicenses => group_licenses::PATH,
            Route::GroupServices => usage::GROUP_SERVICES,
            Route::Instances => usage::INSTANCES,
            Route::Instance => usage::INSTANCE,
            Route::UserServices => usage::USER_SERVICES,
            Route::Users => users::USERS,
            Route::BulkServices => users::BULK,
            Route::Holders => users::HOLDERS,
            Route::Audit => audit::TENANT_TRAIL,
        }
    }

    fn methods(self) -> MethodRouter<Arc<Licensing>> {
        match self {
            Route::TenantLicenses => tenant_licenses::methods(),
            Route::Packs => packs::collection(),
            Route::Pack => packs::item(),
            Route::GroupLicenses => group_licenses::methods(),
            Route::GroupServices => usage::group_services_methods(),
            Route::Instances => usage::instances_methods(),
            Route::Instance => usage::instance_methods(),
            Route::UserServices => usage::user_services_methods(),
            Route::Users => users::users_methods(),
            Route::BulkServices => users::bulk_methods(),
            Route::Holders => users::holders_methods(),
            Route::Audit => audit::tenant_trail(),
        }
    }

    /// Who may call it: the resource it touches.
    fn target(self, ids: &PathIds) -> Result<Target<'_>, ApiError> {
        Ok(match self {
            Route::TenantLicenses => Target::TenantLicenses(ids.tenant()?),
            Route::Packs | Route::Pack => Target::TenantData(ids.tenant()?),
            Route::GroupLicenses => Target::GroupLicenses(ids.group()?),
            Route::GroupServices
            | Route::Instances
            | Route::Instance
            | Route::UserServices
            | Route::Users
            | Route::BulkServices
            | Route::Holders => Target::GroupUsage(ids.group()?),
            Route::Audit => Target::TenantAudit(ids.tenant()?),
        })
    }
}

/// Every route of the licenses function, each with and without its trailing slash; anything
/// else is a JSON 404 and a wrong method a JSON 405 with `Allow` ([`front::finish`]).
pub fn router(store: DynamoStore, configs: DynamoConfigStore, deadline: Duration) -> Router {
    let records = store.idempotency_records();
    let mut routes = Router::new();
    for &route in Route::ALL {
        // Authorization runs before the method is matched, so a bad id is a 400 and a foreign
        // resource a 403 before any 405; idempotency once the caller is allowed.
        routes = routes.merge(
            front::route(route.path(), route.methods(), records.clone())
                .route_layer(middleware::from_fn_with_state(route, authorize)),
        );
    }
    front::finish(
        routes.with_state(Arc::new(Licensing { store, configs })),
        deadline,
    )
}

/// 403 unless the caller may touch the route's resource with the request's method.
async fn authorize(
    State(route): State<Route>,
    caller: Caller,
    ids: Result<PathIds, ApiError>,
    req: Request,
    next: Next,
) -> Response {
    let verdict = ids.and_then(|ids| {
        caller.check(route.target(&ids)?, req.method())?;
        Ok(ids)
    });
    front::admit(route.path(), verdict, req, next).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_served_once() {
        let mut paths: Vec<&str> = Route::ALL.iter().map(|r| r.path()).collect();
        paths.sort();
        paths.dedup();
        assert_eq!(paths.len(), Route::ALL.len());
    }
}
