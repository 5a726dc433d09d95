//! The DynamoDB adapter against a real DynamoDB Local: each test in a tenant of its own.

use api_tests::harness::Tables;
use api_tests::write_ctx;
use api_tests::{fresh_group, group_service, license_record, pack, read_license, user};
use aws_sdk_dynamodb::types::AttributeValue;
use licensing::domain::{
    Allocation, Authority, GroupLicenses, GroupRef, GroupService, Licensable, License,
    LicenseChange, PackDefinition, PackName, UserService,
};
use licensing::store::dynamo::DynamoStore;
use licensing::store::dynamo::keys::{group_pk, license_sk};
use licensing::store::{LicenseStore, RejectReason, Rejection, StoreError, TenantStore};

fn change(item: Licensable, allocation: Allocation) -> LicenseChange {
    LicenseChange {
        item,
        allocation,
        auto_assign: false,
    }
}

async fn define_pack(store: &DynamoStore, group: &GroupRef, name: &str) {
    let pack = PackDefinition {
        name: PackName::parse(name).unwrap(),
        description: String::new(),
        services: vec![UserService::parse("Call Return").unwrap()],
    };
    assert!(
        store
            .create_pack(&write_ctx(), &group.tenant, &pack)
            .await
            .unwrap()
    );
}

/// Writes a record directly, for usage the API cannot create yet.
async fn put_raw(tables: &Tables, group: &GroupRef, item: &Licensable, license: License) {
    let mut record = license_record(&license);
    record.insert("PK".into(), AttributeValue::S(group_pk(group)));
    record.insert("SK".into(), AttributeValue::S(license_sk(item)));
    tables
        .client
        .put_item()
        .table_name(&tables.licenses_table)
        .set_item(Some(record))
        .send()
        .await
        .unwrap();
}

async fn get_raw(tables: &Tables, group: &GroupRef, item: &Licensable) -> Option<License> {
    let out = tables
        .client
        .get_item()
        .table_name(&tables.licenses_table)
        .key("PK", AttributeValue::S(group_pk(group)))
        .key("SK", AttributeValue::S(license_sk(item)))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    out.item().map(read_license)
}

#[tokio::test]
async fn a_group_never_written_has_no_licenses() {
    let tables = Tables::create().await;
    let store = tables.store();
    let licenses = store.group_licenses(&fresh_group("empty")).await.unwrap();
    assert!(licenses.user_services().all(|(_, l)| *l == License::NONE));
    assert!(licenses.group_services().all(|(_, l)| *l == License::NONE));
    assert_eq!(licenses.service_packs().count(), 0);
}

#[tokio::test]
async fn updates_are_stored_and_read_back() {
    let tables = Tables::create().await;
    let store = tables.store();
    let g = fresh_group("rw");
    let changes = [
        change(user("Call Forwarding Always"), Allocation::Unlimited),
        change(user("Call Forwarding Busy"), Allocation::Limited(7)),
        LicenseChange {
            auto_assign: true,
            ..change(
                group_service("Voice Messaging Group"),
                Allocation::Limited(1),
            )
        },
        LicenseChange {
            auto_assign: true,
            ..change(group_service("Hunt Group"), Allocation::Limited(3))
        },
        change(pack("Basic CFx"), Allocation::Limited(5)),
        change(pack("A pack"), Allocation::Unlimited),
    ];
    // Packs are licensed only once their tenant defines them.
    let refused = store
        .update_group_licenses(&write_ctx(), &g, &changes, Authority::Operator, None)
        .await
        .unwrap_err();
    assert!(matches!(refused, StoreError::Rejected(ref r) if r.len() == 2));
    assert_eq!(
        store.group_licenses(&g).await.unwrap(),
        GroupLicenses::default()
    );
    for name in ["Basic CFx", "A pack"] {
        define_pack(&store, &g, name).await;
    }
    store
        .update_group_licenses(&write_ctx(), &g, &changes, Authority::Operator, None)
        .await
        .unwrap();

    let licenses = store.group_licenses(&g).await.unwrap();
    let cfa = UserService::parse("Call Forwarding Always").unwrap();
    let cfb = UserService::parse("Call Forwarding Busy").unwrap();
    let vmg = GroupService::parse("Voice Messaging Group").unwrap();
    let hg = GroupService::parse("Hunt Group").unwrap();
    let l = |allocation, in_use, assigned| License {
        allocation,
        in_use,
        assigned,
    };
    assert_eq!(
        *licenses.user_service(cfa),
        l(Allocation::Unlimited, 0, false)
    );
    assert_eq!(
        *licenses.user_service(cfb),
        l(Allocation::Limited(7), 0, false)
    );
    // auto_assign: a noInstance service counts 1, an instance service stays at its instances.
    assert_eq!(
        *licenses.group_service(vmg),
        l(Allocation::Limited(1), 1, true)
    );
    assert_eq!(
        *licenses.group_service(hg),
        l(Allocation::Limited(3), 0, true)
    );
    let packs: Vec<_> = licenses
        .service_packs()
        .map(|(p, l)| (p.as_str().to_owned(), *l))
        .collect();
    assert_eq!(
        packs,
        [
            ("A pack".to_owned(), l(Allocation::Unlimited, 0, false)),
            ("Basic CFx".to_owned(), l(Allocation::Limited(5), 0, false)),
        ]
    );

    // Switching to unlimited drops the stored maximum; the usage is kept.
    store
        .update_group_licenses(
            &write_ctx(),
            &g,
            &[change(user("Call Forwarding Busy"), Allocation::Unlimited)],
            Authority::Operator,
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        get_raw(&tables, &g, &user("Call Forwarding Busy")).await,
        Some(l(Allocation::Unlimited, 0, false))
    );
}

#[tokio::test]
async fn below_usage_is_refused_and_the_whole_transaction_with_it() {
    let tables = Tables::create().await;
    let store = tables.store();
    let g = fresh_group("below");
    let cfb = user("Call Forwarding Busy");
    let in_use = License {
        allocation: Allocation::Limited(7),
        in_use: 4,
        assigned: false,
    };
    put_raw(&tables, &g, &cfb, in_use).await;

    let changes = [
        change(user("Call Forwarding Always"), Allocation::Limited(9)),
        change(cfb.clone(), Allocation::Limited(3)),
    ];
    let err = store
        .update_group_licenses(&write_ctx(), &g, &changes, Authority::Operator, None)
        .await
        .unwrap_err();
    match err {
        StoreError::Rejected(r) => assert_eq!(
            r,
            [Rejection {
                index: 1,
                reason: RejectReason::BelowUsage { in_use: 4 }
            }]
        ),
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert_eq!(get_raw(&tables, &g, &cfb).await, Some(in_use));
    assert_eq!(
        get_raw(&tables, &g, &user("Call Forwarding Always")).await,
        None
    );

    // Exactly the usage is fine.
    store
        .update_group_licenses(
            &write_ctx(),
            &g,
            &[change(cfb.clone(), Allocation::Limited(4))],
            Authority::Operator,
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        get_raw(&tables, &g, &cfb).await.map(|l| l.allocation),
        Some(Allocation::Limited(4))
    );
}

#[tokio::test]
async fn unlicensing_removes_the_record_only_when_nothing_is_in_use() {
    let tables = Tables::create().await;
    let store = tables.store();
    let g = fresh_group("unlicense");
    let busy = user("Call Forwarding Busy");
    let idle = pack("Idle pack");
    put_raw(
        &tables,
        &g,
        &busy,
        License {
            allocation: Allocation::Unlimited,
            in_use: 1,
            assigned: false,
        },
    )
    .await;
    put_raw(
        &tables,
        &g,
        &idle,
        License {
            allocation: Allocation::Limited(2),
            in_use: 0,
            assigned: false,
        },
    )
    .await;

    let err = store
        .update_group_licenses(
            &write_ctx(),
            &g,
            &[change(busy.clone(), Allocation::NOT_LICENSED)],
            Authority::Operator,
            None,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Rejected(ref r) if r[0].reason == RejectReason::BelowUsage { in_use: 1 })
    );
    assert!(get_raw(&tables, &g, &busy).await.is_some());

    store
        .update_group_licenses(
            &write_ctx(),
            &g,
            &[
                change(idle.clone(), Allocation::NOT_LICENSED),
                // Unlicensing what was never licensed is a no-op, not an error.
                change(user("Call Return"), Allocation::NOT_LICENSED),
            ],
            Authority::Operator,
            None,
        )
        .await
        .unwrap();
    assert_eq!(get_raw(&tables, &g, &idle).await, None);
}

#[tokio::test]
async fn an_unreachable_store_is_unavailable_not_a_hang() {
    use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
    use std::time::{Duration, Instant};
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = licensing::lambda::dynamo_config()
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(1))
                .operation_timeout(Duration::from_secs(5))
                .build(),
        )
        .build();
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::from_conf(config), "licenses");
    let started = Instant::now();
    let err = store
        .group_licenses(&fresh_group("down"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
}
