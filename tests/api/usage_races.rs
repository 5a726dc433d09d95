//! The counting invariants under real concurrency: many tasks racing through the DynamoDB adapter
//! against DynamoDB Local. `inUse` must never pass the
//! maximum and must always equal the number of assignment or instance records; a tenant's
//! groups must never hold more than its pool, and its counter must equal what they hold.

use api_tests::fresh_group;
use api_tests::harness::Tables;
use api_tests::write_ctx;
use aws_sdk_dynamodb::types::AttributeValue;
use licensing::domain::{
    Allocation, Assignable, Authority, GroupId, GroupRef, GroupService, InstanceName, Licensable,
    LicenseChange, PoolChange, PoolRejection, TenantId, UserId, UserService,
};
use licensing::store::dynamo::DynamoStore;
use licensing::store::dynamo::keys::group_pk;
use licensing::store::{LicenseStore, RejectReason, StoreError, TenantStore, UsageStore};

async fn license(store: &DynamoStore, group: &GroupRef, item: Licensable, max: u32) {
    let change = LicenseChange {
        item,
        allocation: Allocation::Limited(max),
        auto_assign: false,
    };
    store
        .update_group_licenses(&write_ctx(), group, &[change], Authority::Operator, None)
        .await
        .unwrap();
}

async fn sort_keys(tables: &Tables, group: &GroupRef) -> Vec<String> {
    let out = tables
        .client
        .query()
        .table_name(&tables.licenses_table)
        .key_condition_expression("PK = :pk")
        .expression_attribute_values(":pk", AttributeValue::S(group_pk(group)))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    out.items()
        .iter()
        .filter_map(|i| match i.get("SK") {
            Some(AttributeValue::S(s)) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_racing_assignments_of_five_licenses_give_exactly_five() {
    let tables = Tables::create().await;
    let store = tables.store();
    let configs = tables.configs();
    let group = fresh_group("race-assign");
    let cw = UserService::parse("Call Waiting").unwrap();
    license(&store, &group, Licensable::User(cw), 5).await;
    let tasks: Vec<_> = (0..60)
        .map(|i| {
            let (store, group, configs) = (store.clone(), group.clone(), configs.clone());
            tokio::spawn(async move {
                let user = UserId::parse(format!("user{i}")).unwrap();
                store
                    .assign_to_user(
                        &write_ctx(),
                        &group,
                        &user,
                        &[Assignable::Service(cw)],
                        &configs,
                    )
                    .await
            })
        })
        .collect();
    let mut ok = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(()) => ok += 1,
            Err(StoreError::Rejected(_)) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(ok, 5);
    let licenses = store.group_licenses(&group).await.unwrap();
    assert_eq!(licenses.user_service(cw).in_use, 5);
    let records = sort_keys(&tables, &group).await;
    assert_eq!(
        records
            .iter()
            .filter(|k| k.ends_with("#SVC#Call Waiting"))
            .count(),
        5
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_assign_and_unassign_of_one_user_keep_the_count_exact() {
    let tables = Tables::create().await;
    let store = tables.store();
    let configs = tables.configs();
    let group = fresh_group("race-flip");
    let cw = UserService::parse("Call Waiting").unwrap();
    license(&store, &group, Licensable::User(cw), 1).await;
    let user = UserId::parse("erin").unwrap();
    for _round in 0..3 {
        let tasks: Vec<_> = (0..40)
            .map(|i| {
                let (store, group, user, configs) =
                    (store.clone(), group.clone(), user.clone(), configs.clone());
                tokio::spawn(async move {
                    let items = [Assignable::Service(cw)];
                    if i % 2 == 0 {
                        store
                            .assign_to_user(&write_ctx(), &group, &user, &items, &configs)
                            .await
                    } else {
                        store
                            .unassign_from_user(&write_ctx(), &group, &user, &items)
                            .await
                    }
                })
            })
            .collect();
        for task in tasks {
            match task.await.unwrap() {
                Ok(()) | Err(StoreError::Rejected(_)) | Err(StoreError::Contended) => {}
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
        let records = sort_keys(&tables, &group)
            .await
            .iter()
            .filter(|k| k.ends_with("#SVC#Call Waiting"))
            .count() as u32;
        assert!(records <= 1);
        let in_use = store
            .group_licenses(&group)
            .await
            .unwrap()
            .user_service(cw)
            .in_use;
        assert_eq!(in_use, records);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_instances_never_exceed_the_maximum_nor_drift() {
    let tables = Tables::create().await;
    let store = tables.store();
    let group = fresh_group("race-inst");
    let aa = GroupService::parse("Auto Attendant").unwrap();
    license(&store, &group, Licensable::Group(aa), 5).await;
    let tasks: Vec<_> = (0..60)
        .map(|i| {
            let (store, group) = (store.clone(), group.clone());
            tokio::spawn(async move {
                let name = InstanceName::parse(format!("aa{i:02}")).unwrap();
                store.add_instance(&write_ctx(), &group, aa, &name).await
            })
        })
        .collect();
    let mut ok = 0;
    for task in tasks {
        if task.await.unwrap().is_ok() {
            ok += 1;
        }
    }
    assert_eq!(ok, 5);
    let count = |keys: Vec<String>| {
        keys.iter()
            .filter(|k| k.starts_with("INST#Auto Attendant#"))
            .count() as u32
    };
    assert_eq!(count(sort_keys(&tables, &group).await), 5);
    assert_eq!(
        store
            .group_licenses(&group)
            .await
            .unwrap()
            .group_service(aa)
            .in_use,
        5
    );

    // Create and delete one name at once, many times: the count follows the records.
    let name = store.instances(&group, aa).await.unwrap()[0].clone();
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let (store, group, name) = (store.clone(), group.clone(), name.clone());
            tokio::spawn(async move {
                if i % 2 == 0 {
                    store
                        .add_instance(&write_ctx(), &group, aa, &name)
                        .await
                        .map(|_| ())
                } else {
                    store
                        .remove_instance(&write_ctx(), &group, aa, &name)
                        .await
                        .map(|_| ())
                }
            })
        })
        .collect();
    for task in tasks {
        match task.await.unwrap() {
            Ok(()) | Err(StoreError::Rejected(_)) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    let records = count(sort_keys(&tables, &group).await);
    assert_eq!(
        store
            .group_licenses(&group)
            .await
            .unwrap()
            .group_service(aa)
            .in_use,
        records
    );
}

/// Sum of the maximums the groups hold and the tenant's counter for the same service.
async fn pool_totals(
    store: &DynamoStore,
    tenant: &TenantId,
    groups: &[GroupRef],
    s: UserService,
) -> (u32, u32) {
    let mut held = 0;
    for g in groups {
        held += store
            .group_licenses(g)
            .await
            .unwrap()
            .user_service(s)
            .allocation
            .maximum()
            .unwrap_or(0);
    }
    let state = store.tenant_state(tenant).await.unwrap();
    let counter = state
        .pool
        .iter()
        .find(|(item, _)| *item == Licensable::User(s))
        .map_or(0, |(_, l)| l.currently_allocated);
    (held, u32::try_from(counter).expect("a small pool"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn groups_racing_for_a_tenant_pool_never_exceed_it() {
    let tables = Tables::create().await;
    let store = tables.store();
    let tenant = fresh_group("race-pool").tenant;
    let cw = UserService::parse("Call Waiting").unwrap();
    let change = |n| LicenseChange {
        item: Licensable::User(cw),
        allocation: Allocation::Limited(n),
        auto_assign: false,
    };
    store
        .update_tenant_licenses(
            &write_ctx(),
            &tenant,
            &[PoolChange {
                item: Licensable::User(cw),
                allocation: Some(Allocation::Limited(10)),
            }],
            None,
        )
        .await
        .unwrap();
    let groups: Vec<GroupRef> = (0..20)
        .map(|i| GroupRef {
            tenant: tenant.clone(),
            group: GroupId::parse(format!("g{i:02}")).unwrap(),
        })
        .collect();

    // Twenty groups race for ten units.
    let tasks: Vec<_> = groups
        .iter()
        .map(|g| {
            let (store, g, change) = (store.clone(), g.clone(), change(1));
            tokio::spawn(async move {
                store
                    .update_group_licenses(&write_ctx(), &g, &[change], Authority::Operator, None)
                    .await
            })
        })
        .collect();
    let mut won = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(()) => won += 1,
            Err(StoreError::Rejected(r)) => assert!(matches!(
                r[0].reason,
                RejectReason::Pool(PoolRejection::Exhausted {
                    tenant_maximum: 10,
                    ..
                })
            )),
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(won, 10);
    assert_eq!(pool_totals(&store, &tenant, &groups, cw).await, (10, 10));

    // Holders give back while others ask, all at once: the counter follows the groups and the
    // pool is never exceeded.
    let tasks: Vec<_> = groups
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let (store, g) = (store.clone(), g.clone());
            let wanted = if i % 2 == 0 { change(0) } else { change(2) };
            tokio::spawn(async move {
                store
                    .update_group_licenses(&write_ctx(), &g, &[wanted], Authority::Operator, None)
                    .await
            })
        })
        .collect();
    for task in tasks {
        match task.await.unwrap() {
            Ok(()) | Err(StoreError::Rejected(_)) | Err(StoreError::Contended) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    let (held, counter) = pool_totals(&store, &tenant, &groups, cw).await;
    assert_eq!(held, counter);
    assert!(held <= 10, "{held} held of a pool of 10");
}
