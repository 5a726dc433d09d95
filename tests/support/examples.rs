//! The README's examples: the group `foo`/`foogroup`, its licenses and usage, the documented
//! pack and configuration object. `local-db seed` writes them for `make run`; tests build them
//! in a tenant of their own.

use crate::helpers::write_ctx;
use licensing::domain::{
    Allocation, Assignable, Audience, Authority, GroupId, GroupRef, GroupService, InstanceName,
    Licensable, License, LicenseChange, PackDefinition, PackName, TenantId, UserId, UserService,
    UserServiceConfig,
};
use licensing::store::dynamo::{DynamoConfigStore, DynamoStore};
use licensing::store::{LicenseStore, TenantStore, UsageStore};

/// A group by its ids.
pub fn group_ref(tenant: &str, group: &str) -> GroupRef {
    GroupRef {
        tenant: TenantId::parse(tenant).expect("test tenant id is valid"),
        group: GroupId::parse(group).expect("test group id is valid"),
    }
}

/// The group of the README's curl examples.
pub fn example_group() -> GroupRef {
    group_ref("foo", "foogroup")
}

/// The documented user-services configuration object, as instance `For_HG`.
pub fn example_config() -> UserServiceConfig {
    UserServiceConfig {
        instance_name: InstanceName::parse("For_HG").expect("instance name"),
        technical_name: UserService::parse("Basic Call Logs").expect("catalog user service"),
        display_name: "Basic Call Logs".into(),
        description: String::new(),
        no_more_assignable: false,
        audience: Audience {
            for_hg: true,
            ..Audience::default()
        },
        add_data: Default::default(),
    }
}

/// The documented service pack.
pub fn example_pack() -> PackDefinition {
    PackDefinition {
        name: PackName::parse("Basic CFx").expect("pack name"),
        description: "Call forwarding bundle".into(),
        services: ["Call Forwarding Always", "Call Forwarding Busy"]
            .into_iter()
            .map(|n| UserService::parse(n).expect("catalog user service"))
            .collect(),
    }
}

/// The licenses behind the documented GET example, with the usage each ends up with.
pub fn example_licenses() -> Vec<(Licensable, License)> {
    let user = |n| Licensable::User(UserService::parse(n).expect("catalog user service"));
    let group = |n| Licensable::Group(GroupService::parse(n).expect("catalog group service"));
    let license = |allocation, in_use, assigned| License {
        allocation,
        in_use,
        assigned,
    };
    vec![
        (
            user("Call Forwarding Always"),
            license(Allocation::Unlimited, 2, false),
        ),
        (
            user("Call Forwarding Busy"),
            license(Allocation::Limited(7), 4, false),
        ),
        (group("Hunt Group"), license(Allocation::Unlimited, 4, true)),
        (
            group("Voice Messaging Group"),
            license(Allocation::Limited(1), 0, false),
        ),
        (
            Licensable::Pack(PackName::parse("Basic CFx").expect("pack name")),
            license(Allocation::Limited(5), 0, false),
        ),
    ]
}

/// Builds the documented example in `group` through the store, usage included: users assigned
/// "Call Forwarding Always" (2) and "Call Forwarding Busy" (4), and four Hunt Group instances, so
/// every `inUse` is backed by its records.
pub async fn seed_example_group(
    store: &DynamoStore,
    configs: &DynamoConfigStore,
    group: &GroupRef,
) -> Result<(), String> {
    // A pack is licensed only once its tenant defines it.
    store
        .create_pack(&write_ctx(), &group.tenant, &example_pack())
        .await
        .map_err(|e| e.to_string())?;
    let changes: Vec<LicenseChange> = example_licenses()
        .into_iter()
        .map(|(item, license)| LicenseChange {
            item,
            allocation: license.allocation,
            auto_assign: false,
        })
        .collect();
    let failed = |e: licensing::store::StoreError| e.to_string();
    store
        .update_group_licenses(&write_ctx(), group, &changes, Authority::Operator, None)
        .await
        .map_err(failed)?;
    let service = |n| Assignable::Service(UserService::parse(n).expect("catalog user service"));
    for i in 1..=4 {
        let mut items = vec![service("Call Forwarding Busy")];
        if i <= 2 {
            items.push(service("Call Forwarding Always"));
        }
        let user = UserId::parse(format!("user{i}@example.com")).expect("user id");
        store
            .assign_to_user(&write_ctx(), group, &user, &items, configs)
            .await
            .map_err(failed)?;
    }
    let hunt_group = GroupService::parse("Hunt Group").expect("catalog group service");
    for name in ["Sales", "Support", "Billing", "Reception"] {
        let name = InstanceName::parse(name).expect("instance name");
        store
            .add_instance(&write_ctx(), group, hunt_group, &name)
            .await
            .map_err(failed)?;
    }
    Ok(())
}
