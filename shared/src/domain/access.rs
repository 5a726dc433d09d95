//! Who may do what. A caller's roles come from the scopes and claims of a token that API Gateway
//! has already verified; this module only decides, and does no I/O.
//!
//! - `licenses/operator` may do everything.
//! - `licenses/tenant-admin` (claim `tenant_id`) may read and write everything under its tenant
//!   except the tenant's own licenses PUT, and may read the configuration.
//! - `licenses/group-admin` (claims `tenant_id`, `group_id`) may read its group's licenses and
//!   usage, change its group's usage (assignments, instances), and read the configuration.

use super::{GroupRef, TenantId};

pub const OPERATOR_SCOPE: &str = "licenses/operator";
pub const TENANT_ADMIN_SCOPE: &str = "licenses/tenant-admin";
pub const GROUP_ADMIN_SCOPE: &str = "licenses/group-admin";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    Operator,
    TenantAdmin(TenantId),
    GroupAdmin(GroupRef),
}

/// What a request touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<'a> {
    /// `/api/v1/configs/...`
    Configs,
    /// A tenant's own licenses.
    TenantLicenses(&'a TenantId),
    /// A tenant's other data (service pack definitions).
    TenantData(&'a TenantId),
    /// A group's licenses.
    GroupLicenses(&'a GroupRef),
    /// A group's usage: services assigned to it, instances, user assignments.
    GroupUsage(&'a GroupRef),
    /// A tenant's audit trail (a group admin's reads are confined to its group's events).
    TenantAudit(&'a TenantId),
    /// The configuration's audit trail.
    ConfigsAudit,
}

/// Whose authority a group licenses PUT carries. In BroadWorks a service provider's administrator
/// can only authorize to a group what the system authorized to the provider: a tenant admin's
/// PUT may license only services the tenant holds an allocation of; an operator's any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authority {
    Operator,
    Tenant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Read,
    Write,
}

/// The roles a verified token grants; a token may carry several.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    roles: Vec<Role>,
}

impl Principal {
    pub fn new(roles: Vec<Role>) -> Self {
        Self { roles }
    }

    /// The authority of the principal's group licenses PUT.
    pub fn authority(&self) -> Authority {
        if self.roles.contains(&Role::Operator) {
            Authority::Operator
        } else {
            Authority::Tenant
        }
    }

    /// Whose `Idempotency-Key`s the principal's share: what the caller can reach. Operators
    /// share the operators' keys; a tenant admin its tenant's; a group admin its group's, so one
    /// group's admins neither collide with nor see another group's keys. The broadest role of a
    /// token decides.
    pub fn key_scope(&self) -> String {
        if self.roles.contains(&Role::Operator) {
            return "operator".to_owned();
        }
        if let Some(t) = self.roles.iter().find_map(|role| match role {
            Role::TenantAdmin(t) => Some(t),
            _ => None,
        }) {
            return format!("tenant:{}", t.as_str());
        }
        match self.roles.iter().find_map(|role| match role {
            Role::GroupAdmin(g) => Some(g),
            _ => None,
        }) {
            // Ids hold no `/`, so the pair reads back one way only.
            Some(g) => format!("group:{}/{}", g.tenant.as_str(), g.group.as_str()),
            None => "none".to_owned(),
        }
    }

    /// The principal's broadest role, as audit records and log lines name it.
    pub fn role_name(&self) -> &'static str {
        if self.roles.contains(&Role::Operator) {
            "operator"
        } else if self.roles.iter().any(|r| matches!(r, Role::TenantAdmin(_))) {
            "tenant-admin"
        } else if self.roles.iter().any(|r| matches!(r, Role::GroupAdmin(_))) {
            "group-admin"
        } else {
            "none"
        }
    }

    /// The group a group admin (with no broader role) is confined to.
    pub fn only_group(&self) -> Option<&GroupRef> {
        if !self.roles.iter().all(|r| matches!(r, Role::GroupAdmin(_))) {
            return None;
        }
        self.roles.iter().find_map(|role| match role {
            Role::GroupAdmin(g) => Some(g),
            _ => None,
        })
    }

    pub fn may(&self, target: Target<'_>, action: Action) -> bool {
        self.roles.iter().any(|role| role_may(role, target, action))
    }
}

fn role_may(role: &Role, target: Target<'_>, action: Action) -> bool {
    match role {
        Role::Operator => true,
        Role::TenantAdmin(tenant) => match target {
            Target::Configs => action == Action::Read,
            Target::TenantAudit(t) => t == tenant && action == Action::Read,
            Target::ConfigsAudit => false,
            Target::TenantLicenses(t) => t == tenant && action == Action::Read,
            Target::TenantData(t) => t == tenant,
            Target::GroupLicenses(g) | Target::GroupUsage(g) => &g.tenant == tenant,
        },
        Role::GroupAdmin(group) => match target {
            Target::Configs => action == Action::Read,
            Target::TenantAudit(t) => *t == group.tenant && action == Action::Read,
            Target::ConfigsAudit => false,
            Target::TenantLicenses(_) | Target::TenantData(_) => false,
            Target::GroupLicenses(g) => g == group && action == Action::Read,
            Target::GroupUsage(g) => g == group,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::GroupId;

    fn tenant(t: &str) -> TenantId {
        TenantId::parse(t).unwrap()
    }

    fn group(t: &str, g: &str) -> GroupRef {
        GroupRef {
            tenant: tenant(t),
            group: GroupId::parse(g).unwrap(),
        }
    }

    use Action::{Read, Write};

    #[test]
    fn operators_may_do_everything() {
        let p = Principal::new(vec![Role::Operator]);
        let (t, g) = (tenant("foo"), group("foo", "g"));
        for target in [
            Target::Configs,
            Target::TenantLicenses(&t),
            Target::TenantData(&t),
            Target::GroupLicenses(&g),
            Target::GroupUsage(&g),
        ] {
            assert!(p.may(target, Read) && p.may(target, Write), "{target:?}");
        }
    }

    #[test]
    fn tenant_admins_keep_to_their_tenant_and_cannot_set_its_pool() {
        let p = Principal::new(vec![Role::TenantAdmin(tenant("foo"))]);
        let (foo, bar) = (tenant("foo"), tenant("bar"));
        let (foo_g, bar_g) = (group("foo", "g"), group("bar", "g"));
        assert!(p.may(Target::TenantLicenses(&foo), Read));
        assert!(!p.may(Target::TenantLicenses(&foo), Write));
        assert!(p.may(Target::TenantData(&foo), Write));
        assert!(p.may(Target::GroupLicenses(&foo_g), Write));
        assert!(p.may(Target::GroupUsage(&foo_g), Write));
        assert!(p.may(Target::Configs, Read));
        assert!(!p.may(Target::Configs, Write));
        for action in [Read, Write] {
            assert!(!p.may(Target::TenantLicenses(&bar), action));
            assert!(!p.may(Target::TenantData(&bar), action));
            assert!(!p.may(Target::GroupLicenses(&bar_g), action));
            assert!(!p.may(Target::GroupUsage(&bar_g), action));
        }
    }

    #[test]
    fn group_admins_keep_to_their_group_and_only_change_usage() {
        let p = Principal::new(vec![Role::GroupAdmin(group("foo", "g"))]);
        let (g, other) = (group("foo", "g"), group("foo", "h"));
        let foo = tenant("foo");
        assert!(p.may(Target::GroupLicenses(&g), Read));
        assert!(!p.may(Target::GroupLicenses(&g), Write));
        assert!(p.may(Target::GroupUsage(&g), Write));
        assert!(p.may(Target::Configs, Read));
        assert!(!p.may(Target::Configs, Write));
        assert!(!p.may(Target::TenantLicenses(&foo), Read));
        assert!(!p.may(Target::TenantData(&foo), Read));
        assert!(!p.may(Target::GroupLicenses(&other), Read));
        assert!(!p.may(Target::GroupUsage(&other), Write));
    }

    #[test]
    fn no_role_may_nothing() {
        let p = Principal::new(vec![]);
        assert!(!p.may(Target::Configs, Read));
    }
}
