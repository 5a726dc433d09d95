//! Path parameters, parsed once at the boundary into the domain's ids.
//!
//! In AWS, API Gateway hands the function a path it has already percent-decoded, and lambda_http
//! re-encodes it into the request URI; locally the client's encoding reaches axum as sent. Either
//! way axum decodes each captured segment once, and the id types refuse what API Gateway could
//! not have delivered intact (`/ ? # %`, control characters), with a 400 naming the parameter.
//!
//! Parameter names are the router's: `tenant_id`, `group_id`, `user_id`, `service` (a catalog
//! group service, by name or slug; after `kind`, a user service by name or slug or a pack by
//! name), `kind` (`userServices` or `servicePacks`), `pack_name`, `instance_name`.

use super::error::{ApiError, ErrorItem};
use crate::domain::{
    GroupId, GroupRef, GroupService, IdError, InstanceName, PackName, TenantId, UserId, UserService,
};
use crate::store::Holds;
use axum::extract::path::ErrorKind;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;

/// Every id of the matched route, each validated; the typed extractors below pick theirs. A
/// function's authorization layer parses them once and leaves them in the request's extensions
/// for the handler's extractor ([`super::front::admit`]).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct PathIds {
    pub tenant: Option<TenantId>,
    pub group: Option<GroupRef>,
    pub user: Option<UserId>,
    pub service: Option<GroupService>,
    pub pack: Option<PackName>,
    pub instance: Option<InstanceName>,
    /// `{kind}/{service}`: the user service or pack whose holders a route lists.
    pub held: Option<Holds>,
}

/// The `{kind}` of a license whose holders are listed: what its `{service}` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    UserServices,
    ServicePacks,
}

impl PathIds {
    /// Parses decoded `(name, value)` captures in path order; the first bad one is the answer.
    pub fn parse(captures: &[(String, String)]) -> Result<PathIds, ApiError> {
        let mut ids = PathIds::default();
        let mut kind = None;
        for (name, value) in captures {
            match name.as_str() {
                "tenant_id" => ids.tenant = Some(id("tenant_id", value, TenantId::parse)?),
                "group_id" => {
                    let group = id("group_id", value, GroupId::parse)?;
                    // Routes name the tenant before its groups.
                    let tenant = ids.tenant.clone().ok_or_else(|| {
                        ApiError::internal("a route names a group before its tenant")
                    })?;
                    ids.group = Some(GroupRef { tenant, group });
                }
                "user_id" => ids.user = Some(id("user_id", value, UserId::parse)?),
                "pack_name" => ids.pack = Some(id("pack_name", value, PackName::parse)?),
                "instance_name" => {
                    ids.instance = Some(id("instance_name", value, InstanceName::parse)?)
                }
                "kind" => {
                    kind = Some(match value.as_str() {
                        "userServices" => Kind::UserServices,
                        "servicePacks" => Kind::ServicePacks,
                        _ => {
                            return Err(ApiError::NoSuch(format!(
                                "{value:?} is not a kind of license with holders (userServices or servicePacks)"
                            )));
                        }
                    })
                }
                "service" => match kind {
                    None => ids.service = Some(instance_service(value)?),
                    Some(Kind::UserServices) => ids.held = Some(Holds::Service(
                        UserService::from_path(value).map_err(|_| {
                            ApiError::NoSuch(format!(
                                "{value:?} is not a user service of the catalog (by name or slug)"
                            ))
                        })?,
                    )),
                    Some(Kind::ServicePacks) => {
                        ids.held = Some(Holds::Pack(id("service", value, PackName::parse)?))
                    }
                },
                // A capture the router has but this list lacks is a defect of ours.
                other => {
                    return Err(ApiError::internal(format!(
                        "the route captures {other:?}, which no id parses"
                    )));
                }
            }
        }
        Ok(ids)
    }

    pub fn tenant(&self) -> Result<&TenantId, ApiError> {
        required(self.tenant.as_ref())
    }

    pub fn group(&self) -> Result<&GroupRef, ApiError> {
        required(self.group.as_ref())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for PathIds {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        if let Some(ids) = parts.extensions.get::<PathIds>() {
            return Ok(ids.clone()); // parsed by the authorization layer
        }
        // axum refuses a capture that is not UTF-8 once decoded (`%FF`).
        let Path(captures) = Path::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map_err(|rejection| {
                let mut item = ErrorItem::new(
                    "INVALID_ID",
                    "a path parameter is not valid UTF-8 once percent-decoded",
                );
                if let PathRejection::FailedToDeserializePathParams(e) = &rejection
                    && let ErrorKind::InvalidUtf8InPathParam { key } = e.kind()
                {
                    item = ErrorItem::new(
                        "INVALID_ID",
                        format!("{key} is not valid UTF-8 once percent-decoded"),
                    )
                    .field(key.clone());
                }
                ApiError::bad_request(item)
            })?;
        PathIds::parse(&captures)
    }
}

fn id<T>(
    field: &'static str,
    value: &str,
    parse: impl FnOnce(String) -> Result<T, IdError>,
) -> Result<T, ApiError> {
    parse(value.to_owned()).map_err(|e| {
        ApiError::bad_request(ErrorItem::new("INVALID_ID", format!("{field} {e}")).field(field))
    })
}

/// The `{service}` of the instance routes: a catalog group service that has instances, named by
/// its catalog name or its slug (`hunt-group`, `find-me-follow-me`).
fn instance_service(value: &str) -> Result<GroupService, ApiError> {
    let service = GroupService::from_path(value).map_err(|_| {
        ApiError::NoSuch(format!(
            "{value:?} is not a group service of the catalog (by name or slug)"
        ))
    })?;
    if service.no_instance() {
        return Err(ApiError::bad_request(
            ErrorItem::new(
                "NO_INSTANCES",
                format!(
                    "{} is assigned to the group as a whole and has no instances",
                    service.name()
                ),
            )
            .field("service")
            .name(service.name()),
        ));
    }
    Ok(service)
}

/// Defines a typed path extractor over [`PathIds`].
macro_rules! path_extractor {
    ($(#[$doc:meta])* $name:ident($($ty:ty),+), |$ids:ident| $build:expr) => {
        $(#[$doc])*
        pub struct $name($(pub $ty),+);

        impl<S: Send + Sync> FromRequestParts<S> for $name {
            type Rejection = ApiError;

            async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
                let $ids = PathIds::from_request_parts(parts, state).await?;
                $build
            }
        }
    };
}

/// An id the route always has; its absence is a defect of ours.
fn required<T>(value: Option<T>) -> Result<T, ApiError> {
    value.ok_or_else(|| ApiError::internal("a handler asked for an id its route lacks"))
}

path_extractor!(
    /// `{tenant_id}`.
    TenantPath(TenantId),
    |ids| Ok(TenantPath(required(ids.tenant)?))
);
path_extractor!(
    /// `{tenant_id}/service_packs/{pack_name}`.
    PackPath(TenantId, PackName),
    |ids| Ok(PackPath(required(ids.tenant)?, required(ids.pack)?))
);
path_extractor!(
    /// `{tenant_id}/groups/{group_id}`.
    GroupPath(GroupRef),
    |ids| Ok(GroupPath(required(ids.group)?))
);
path_extractor!(
    /// `.../groups/{group_id}/services/{service}`.
    ServicePath(GroupRef, GroupService),
    |ids| Ok(ServicePath(required(ids.group)?, required(ids.service)?))
);
path_extractor!(
    /// `.../groups/{group_id}/services/{service}/instances/{instance_name}`.
    InstancePath(GroupRef, GroupService, InstanceName),
    |ids| Ok(InstancePath(
        required(ids.group)?,
        required(ids.service)?,
        required(ids.instance)?
    ))
);
path_extractor!(
    /// `.../groups/{group_id}/users/{user_id}`.
    UserPath(GroupRef, UserId),
    |ids| Ok(UserPath(required(ids.group)?, required(ids.user)?))
);
path_extractor!(
    /// `.../groups/{group_id}/licenses/{kind}/{service}`.
    HeldPath(GroupRef, Holds),
    |ids| Ok(HeldPath(required(ids.group)?, required(ids.held)?))
);
path_extractor!(
    /// `/api/v1/configs/user_services/{instance_name}`.
    ConfigPath(InstanceName),
    |ids| Ok(ConfigPath(required(ids.instance)?))
);

#[cfg(test)]
mod tests {
    use super::*;

    fn captures(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn field(err: ApiError) -> Option<String> {
        match err {
            ApiError::BadRequest(items) => items[0].field.clone(),
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    #[test]
    fn ids_are_parsed_and_the_first_bad_one_is_named() {
        let ids = PathIds::parse(&captures(&[
            ("tenant_id", "foo"),
            ("group_id", "foo group"),
            ("service", "find-me-follow-me"),
            ("instance_name", "Night Line"),
        ]))
        .unwrap();
        assert_eq!(ids.group().unwrap().group.as_str(), "foo group");
        assert_eq!(ids.service.unwrap().name(), "Find-me/Follow-me");
        let bad = PathIds::parse(&captures(&[("tenant_id", "a/b"), ("group_id", "c?d")]));
        assert_eq!(field(bad.unwrap_err()).as_deref(), Some("tenant_id"));
        let bad = PathIds::parse(&captures(&[("tenant_id", "t"), ("user_id", "50%")]));
        assert_eq!(field(bad.unwrap_err()).as_deref(), Some("user_id"));
    }

    #[test]
    fn services_without_instances_and_unknown_services_are_refused() {
        let moh = PathIds::parse(&captures(&[("service", "music-on-hold")]));
        assert_eq!(field(moh.unwrap_err()).as_deref(), Some("service"));
        let unknown = PathIds::parse(&captures(&[("service", "nope")]));
        assert!(matches!(unknown, Err(ApiError::NoSuch(_))));
    }
}
