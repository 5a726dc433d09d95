//! The usage invariants under real concurrency: many tasks racing through the DynamoDB adapter
//! against DynamoDB Local (started by `scripts/stack.sh test`). `inUse` must never pass the
//! maximum, and must always equal the number of assignment or instance records.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use licensing::domain::{
    Allocation, Assignable, GroupId, GroupRef, GroupService, InstanceName, Licensable,
    LicenseChange, TenantId, UserId, UserService,
};
use licensing::store::dynamo::DynamoStore;
use licensing::store::keys::group_pk;
use licensing::store::schema::ensure_table;
use licensing::store::{LicenseStore, StoreError, UsageStore};
use std::sync::atomic::{AtomicU32, Ordering};
use tokio::sync::OnceCell;

static TABLE: OnceCell<String> = OnceCell::const_new();

async fn store() -> DynamoStore {
    assert!(
        std::env::var("AWS_ENDPOINT_URL_DYNAMODB").is_ok(),
        "AWS_ENDPOINT_URL_DYNAMODB is not set: run through `make test` (scripts/stack.sh test)"
    );
    let client = Client::new(&aws_config::from_env().load().await);
    let table = TABLE
        .get_or_init(|| async {
            let name = format!("races-test-{}", std::process::id());
            ensure_table(&client, &name)
                .await
                .expect("create the test table");
            name
        })
        .await;
    DynamoStore::new(client, table.clone())
}

fn fresh_group(label: &str) -> GroupRef {
    static N: AtomicU32 = AtomicU32::new(0);
    GroupRef {
        tenant: TenantId::parse(format!("{label}-{}", N.fetch_add(1, Ordering::Relaxed))).unwrap(),
        group: GroupId::parse("g").unwrap(),
    }
}

async fn license(store: &DynamoStore, group: &GroupRef, item: Licensable, max: u32) {
    let change = LicenseChange {
        item,
        allocation: Allocation::Limited(max),
        auto_assign: false,
    };
    store.update_group_licenses(group, &[change]).await.unwrap();
}

async fn sort_keys(store: &DynamoStore, group: &GroupRef) -> Vec<String> {
    let out = store
        .client()
        .query()
        .table_name(store.table())
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
    let store = store().await;
    let group = fresh_group("race-assign");
    let cw = UserService::parse("Call Waiting").unwrap();
    license(&store, &group, Licensable::User(cw), 5).await;
    let tasks: Vec<_> = (0..60)
        .map(|i| {
            let (store, group) = (store.clone(), group.clone());
            tokio::spawn(async move {
                let user = UserId::parse(format!("user{i}")).unwrap();
                store
                    .assign_to_user(&group, &user, &[Assignable::Service(cw)], &[])
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
    let records = sort_keys(&store, &group).await;
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
    let store = store().await;
    let group = fresh_group("race-flip");
    let cw = UserService::parse("Call Waiting").unwrap();
    license(&store, &group, Licensable::User(cw), 1).await;
    let user = UserId::parse("erin").unwrap();
    for _round in 0..3 {
        let tasks: Vec<_> = (0..40)
            .map(|i| {
                let (store, group, user) = (store.clone(), group.clone(), user.clone());
                tokio::spawn(async move {
                    let items = [Assignable::Service(cw)];
                    if i % 2 == 0 {
                        store.assign_to_user(&group, &user, &items, &[]).await
                    } else {
                        store.unassign_from_user(&group, &user, &items).await
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
        let records = sort_keys(&store, &group)
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
    let store = store().await;
    let group = fresh_group("race-inst");
    let aa = GroupService::parse("Auto Attendant").unwrap();
    license(&store, &group, Licensable::Group(aa), 5).await;
    let tasks: Vec<_> = (0..60)
        .map(|i| {
            let (store, group) = (store.clone(), group.clone());
            tokio::spawn(async move {
                let name = InstanceName::parse(format!("aa{i:02}")).unwrap();
                store.add_instance(&group, aa, &name).await
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
    assert_eq!(count(sort_keys(&store, &group).await), 5);
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
                    store.add_instance(&group, aa, &name).await.map(|_| ())
                } else {
                    store.remove_instance(&group, aa, &name).await.map(|_| ())
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
    let records = count(sort_keys(&store, &group).await);
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
