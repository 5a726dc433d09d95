//! Key layout of the licenses table.
//!
//! `PK = TENANT#<tenant>#GROUP#<group>` keeps a tenant's data out of every other tenant's
//! partitions; `SK = LIC#USER#<service>`, `LIC#GROUP#<service>`, `LIC#PACK#<pack>` lets one
//! `Query` with `begins_with(SK, "LIC#")` read all of a group's licenses and nothing else that
//! later lives in the partition.
//!
//! Usage lives in the same partition: `SK = INST#<group service>#<instance>` for instances of a
//! group service, `SK = USER#<user>#SVC#<service>` and `USER#<user>#PACK#<pack>` for what a user
//! is assigned, so one `Query` on a prefix lists a service's instances or a user's assignments.
//!
//! Beside them: the group's allocations version (`SK = LIC#ALLOCATIONS`, `etag.rs`), tenant
//! partitions (`PK = TENANT#<tenant>`: pool records `POOL#...`, pack definitions `PACKDEF#...`),
//! idempotency records (`PK = IDEM#<scope>#<key>`, `SK = IDEM`) and the layout marker of a
//! development table (`PK = META#layout`). In the user-services table: the objects
//! (`PK = CONFIG#user_services`, `SK = <instance name>`) and the copies of the blocked services
//! (`PK = CONFIG#blocked#NN`, `SK = CONFIG#blocked`). Every key format is here, with its parser.
//!
//! Ids may contain `#`, so they are escaped (`%` → `%25`, `#` → `%23`) wherever more than one
//! variable part shares a key: without it tenant `a#GROUP#b` with group `c` and tenant `a` with
//! group `b#GROUP#c` would share a partition. The last part of a sort key needs no escaping.

use crate::domain::{
    Assignable, GroupRef, GroupService, InstanceName, Licensable, PackName, TenantId, UserId,
    UserService,
};

pub const LICENSE_PREFIX: &str = "LIC#";
pub const GROUP_LICENSE_PREFIX: &str = "LIC#GROUP#";
const USER: &str = "LIC#USER#";
const GROUP: &str = "LIC#GROUP#";
const PACK: &str = "LIC#PACK#";

fn push_escaped(out: &mut String, id: &str) {
    for c in id.chars() {
        match c {
            '%' => out.push_str("%25"),
            '#' => out.push_str("%23"),
            c => out.push(c),
        }
    }
}

/// Partition key of a group.
pub fn group_pk(group: &GroupRef) -> String {
    let (t, g) = (group.tenant.as_str(), group.group.as_str());
    let mut pk = String::with_capacity(14 + t.len() + g.len());
    pk.push_str("TENANT#");
    push_escaped(&mut pk, t);
    pk.push_str("#GROUP#");
    push_escaped(&mut pk, g);
    pk
}

/// Partition key of a tenant's own data: its pool and its pack definitions. Distinct from every
/// group key, which continues with `#GROUP#`.
pub fn tenant_pk(tenant: &TenantId) -> String {
    let mut pk = String::with_capacity(7 + tenant.as_str().len());
    pk.push_str("TENANT#");
    push_escaped(&mut pk, tenant.as_str());
    pk
}

/// Partition of a tenant's audit trail. Not a `TENANT#` partition, so the readers of the
/// licensing state (licensing-audit) pass it by.
pub fn audit_pk(tenant: &TenantId) -> String {
    let mut pk = String::with_capacity(13 + tenant.as_str().len());
    pk.push_str("AUDIT#TENANT#");
    push_escaped(&mut pk, tenant.as_str());
    pk
}

/// Partition of the user-services configuration's audit trail (in its own table).
pub const CONFIGS_AUDIT_PK: &str = "AUDIT#CONFIG#user_services";

/// The group's allocations version (the weak ETag of its licenses), beside its licenses.
pub const ALLOCATIONS_SK: &str = "LIC#ALLOCATIONS";
/// Sort key of an idempotency record.
pub const IDEMPOTENCY_SK: &str = "IDEM";
/// Partition of the user-services configuration objects.
pub const CONFIGS_PK: &str = "CONFIG#user_services";
/// Sort key of each copy of the blocked services (its partition: [`blocked_copy_pk`]).
pub const BLOCKED_SK: &str = "CONFIG#blocked";
/// Partition of the layout marker of a table made by the local tools.
pub const LAYOUT_PK: &str = "META#layout";

/// Partition of copy `copy` of the blocked services.
pub fn blocked_copy_pk(copy: usize) -> String {
    format!("{BLOCKED_SK}#{copy:02}")
}

/// Partition of the idempotency record of `key` in the caller scope `scope`.
pub fn idempotency_pk(scope: &str, key: &str) -> String {
    let mut pk = String::with_capacity(6 + scope.len() + key.len());
    pk.push_str("IDEM#");
    push_escaped(&mut pk, scope);
    pk.push('#');
    pk.push_str(key);
    pk
}

/// The tenant and, for a group's partition, the group a partition key names, as stored
/// (escaped); `None` for partitions that are not a tenant's (idempotency records, markers).
pub fn parse_partition(pk: &str) -> Option<(&str, Option<&str>)> {
    let rest = pk.strip_prefix("TENANT#")?;
    Some(match rest.split_once("#GROUP#") {
        Some((t, g)) => (t, Some(g)),
        None => (rest, None),
    })
}

/// A record of a group's partition, as its sort key names it; names as stored (also those this
/// version's catalog no longer knows), users escaped.
#[derive(Debug, PartialEq, Eq)]
pub enum GroupKey<'a> {
    License(Licensable),
    Instance { service: &'a str, name: &'a str },
    Holding { user: &'a str, service: &'a str },
    PackAssignment { user: &'a str, pack: &'a str },
}

/// Parses a sort key of a group's partition; `None` for the allocations version and keys this
/// version does not know.
pub fn parse_group_sk(sk: &str) -> Option<GroupKey<'_>> {
    if let Some(licensable) = parse_license_sk(sk) {
        return Some(GroupKey::License(licensable));
    }
    if let Some(rest) = sk.strip_prefix("INST#") {
        let (service, name) = rest.split_once('#')?;
        return Some(GroupKey::Instance { service, name });
    }
    let (user, what) = sk.strip_prefix("USER#")?.split_once('#')?;
    if let Some(service) = what.strip_prefix("SVC#") {
        Some(GroupKey::Holding { user, service })
    } else {
        let pack = what.strip_prefix("PACK#")?;
        Some(GroupKey::PackAssignment { user, pack })
    }
}

pub const POOL_PREFIX: &str = "POOL#";
pub const PACKDEF_PREFIX: &str = "PACKDEF#";

/// Sort key of a tenant's pool record for a service or pack: `POOL#` + the license sort key's
/// kind and name (`POOL#USER#Call Waiting`).
pub fn pool_sk(item: &Licensable) -> String {
    let license = license_sk(item);
    let mut sk = String::with_capacity(POOL_PREFIX.len() + license.len());
    sk.push_str(POOL_PREFIX);
    sk.push_str(&license[LICENSE_PREFIX.len()..]);
    sk
}

/// The licensable a pool sort key names.
pub fn parse_pool_sk(sk: &str) -> Option<Licensable> {
    let rest = sk.strip_prefix(POOL_PREFIX)?;
    parse_license_sk(&format!("{LICENSE_PREFIX}{rest}"))
}

pub fn packdef_sk(name: &PackName) -> String {
    format!("{PACKDEF_PREFIX}{}", name.as_str())
}

/// Sort key of a license record.
pub fn license_sk(item: &Licensable) -> String {
    let (prefix, name) = match item {
        Licensable::User(s) => (USER, s.name()),
        Licensable::Group(s) => (GROUP, s.name()),
        Licensable::Pack(p) => (PACK, p.as_str()),
    };
    let mut sk = String::with_capacity(prefix.len() + name.len());
    sk.push_str(prefix);
    sk.push_str(name);
    sk
}

/// Prefix of a group service's instances.
pub fn instance_prefix(service: GroupService) -> String {
    format!("INST#{}#", service.name())
}

pub fn instance_sk(service: GroupService, name: &InstanceName) -> String {
    let mut sk = instance_prefix(service);
    sk.push_str(name.as_str());
    sk
}

/// Prefix of a user's records: holdings of services and assignments of packs
/// (`holdings.rs`).
pub fn user_prefix(user: &UserId) -> String {
    let mut prefix = String::with_capacity(user.as_str().len() + 6);
    prefix.push_str("USER#");
    push_escaped(&mut prefix, user.as_str());
    prefix.push('#');
    prefix
}

/// The first sort key of a group's user records, and a bound past the last (`$` follows `#`).
pub const USERS_START: &str = "USER#";
pub const USERS_END: &str = "USER$";

/// The user part (escaped) of a sort key of a user's record.
pub fn user_part(sk: &str) -> Option<&str> {
    Some(sk.strip_prefix(USERS_START)?.split_once('#')?.0)
}

/// The prefix of the records of the user whose escaped key part is `part`.
pub fn user_prefix_of(part: &str) -> String {
    format!("{USERS_START}{part}#")
}

/// A sort key past every record of the user whose escaped key part is `part` and before the
/// next user's: escaped parts hold no `#`, so `USER#<part>$` follows `USER#<part>#...`.
pub fn after_user(part: &str) -> String {
    format!("{USERS_START}{part}$")
}

/// An id as it was before it was escaped for a key.
pub fn unescape(part: &str) -> String {
    let mut out = String::with_capacity(part.len());
    let mut rest = part;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("%25") {
            out.push('%');
            rest = after;
        } else if let Some(after) = tail.strip_prefix("%23") {
            out.push('#');
            rest = after;
        } else {
            out.push('%');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

/// Sort key of a user's holding of a service (`SVC#`) or assignment of a pack (`PACK#`).
pub fn assignment_sk(user_prefix: &str, item: &Assignable) -> String {
    let (kind, name) = match item {
        Assignable::Service(s) => ("SVC#", s.name()),
        Assignable::Pack(p) => ("PACK#", p.as_str()),
    };
    let mut sk = String::with_capacity(user_prefix.len() + kind.len() + name.len());
    sk.push_str(user_prefix);
    sk.push_str(kind);
    sk.push_str(name);
    sk
}

/// The assignment a sort key names, given the user's prefix; `None` for keys this version does
/// not know.
pub fn parse_assignment_sk(user_prefix: &str, sk: &str) -> Option<Assignable> {
    let rest = sk.strip_prefix(user_prefix)?;
    if let Some(name) = rest.strip_prefix("SVC#") {
        UserService::parse(name).ok().map(Assignable::Service)
    } else if let Some(name) = rest.strip_prefix("PACK#") {
        PackName::parse(name).ok().map(Assignable::Pack)
    } else {
        None
    }
}

/// The licensable a sort key names, or `None` for a key this version does not know (a service
/// dropped from the catalog, say), which readers skip.
pub fn parse_license_sk(sk: &str) -> Option<Licensable> {
    if let Some(name) = sk.strip_prefix(USER) {
        UserService::parse(name).ok().map(Licensable::User)
    } else if let Some(name) = sk.strip_prefix(GROUP) {
        GroupService::parse(name).ok().map(Licensable::Group)
    } else if let Some(name) = sk.strip_prefix(PACK) {
        PackName::parse(name).ok().map(Licensable::Pack)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{GroupId, TenantId};

    fn group(t: &str, g: &str) -> GroupRef {
        GroupRef {
            tenant: TenantId::parse(t).unwrap(),
            group: GroupId::parse(g).unwrap(),
        }
    }

    #[test]
    fn partition_keys_cannot_collide_across_tenants() {
        // Ids cannot hold `#` (domain/ids.rs), and key parts are escaped all the same, so a key
        // written by any earlier version still reads back as its own.
        assert!(TenantId::parse("a#GROUP#b").is_err());
        assert_eq!(
            group_pk(&group("foo", "foogroup")),
            "TENANT#foo#GROUP#foogroup"
        );
        let mut escaped = String::new();
        push_escaped(&mut escaped, "50%#1");
        assert_eq!(escaped, "50%25%231");
        for id in ["50%#1", "%23", "#25", "%%##", "plain", "%2"] {
            let mut escaped = String::new();
            push_escaped(&mut escaped, id);
            assert_eq!(unescape(&escaped), id);
        }
    }

    #[test]
    fn every_group_record_key_parses_back() {
        let user = user_prefix(&UserId::parse("ann@x").unwrap());
        let cw = UserService::parse("Call Waiting").unwrap();
        let hunt = GroupService::parse("Hunt Group").unwrap();
        let pack = PackName::parse("Duo").unwrap();
        assert_eq!(
            parse_group_sk(&license_sk(&Licensable::User(cw))),
            Some(GroupKey::License(Licensable::User(cw)))
        );
        assert_eq!(
            parse_group_sk(&instance_sk(hunt, &InstanceName::parse("Sales").unwrap())),
            Some(GroupKey::Instance {
                service: "Hunt Group",
                name: "Sales"
            })
        );
        assert_eq!(
            parse_group_sk(&assignment_sk(&user, &Assignable::Service(cw))),
            Some(GroupKey::Holding {
                user: "ann@x",
                service: "Call Waiting"
            })
        );
        assert_eq!(
            parse_group_sk(&assignment_sk(&user, &Assignable::Pack(pack))),
            Some(GroupKey::PackAssignment {
                user: "ann@x",
                pack: "Duo"
            })
        );
        assert_eq!(parse_group_sk(ALLOCATIONS_SK), None);
        let g = group("a", "b");
        assert_eq!(parse_partition(&group_pk(&g)), Some(("a", Some("b"))));
        assert_eq!(parse_partition(&tenant_pk(&g.tenant)), Some(("a", None)));
        assert_eq!(parse_partition(&idempotency_pk("operator", "k")), None);
        assert_eq!(parse_partition(LAYOUT_PK), None);
    }

    #[test]
    fn sort_keys_round_trip() {
        let items = [
            Licensable::User(UserService::parse("Call Forwarding Always").unwrap()),
            Licensable::Group(GroupService::parse("Find-me/Follow-me").unwrap()),
            Licensable::User(UserService::parse("Find-me/Follow-me").unwrap()),
            Licensable::Pack(PackName::parse("Pack no. 1: 100 & more").unwrap()),
        ];
        for item in items {
            let sk = license_sk(&item);
            assert!(sk.starts_with(LICENSE_PREFIX));
            assert_eq!(parse_license_sk(&sk), Some(item));
        }
        assert_eq!(parse_license_sk("LIC#USER#No Such Service"), None);
    }

    #[test]
    fn tenant_keys_never_equal_group_keys() {
        let t = TenantId::parse("a").unwrap();
        assert_eq!(tenant_pk(&t), "TENANT#a");
        assert_ne!(tenant_pk(&t), group_pk(&group("a", "b")));
        let item = Licensable::User(UserService::parse("Call Waiting").unwrap());
        assert_eq!(pool_sk(&item), "POOL#USER#Call Waiting");
        assert_eq!(parse_pool_sk(&pool_sk(&item)), Some(item));
    }

    #[test]
    fn user_prefixes_cannot_overlap() {
        // User "ab" must not list under user "a".
        let a = user_prefix(&UserId::parse("a").unwrap());
        let b = user_prefix(&UserId::parse("ab").unwrap());
        assert!(!b.starts_with(&a));
        let pack = Assignable::Pack(PackName::parse("Basic CFx").unwrap());
        let sk = assignment_sk(&a, &pack);
        assert_eq!(sk, "USER#a#PACK#Basic CFx");
        assert_eq!(parse_assignment_sk(&a, &sk), Some(pack));
        assert_eq!(parse_assignment_sk(&b, &sk), None);
    }
}
