//! The DynamoDB adapter of the user-services configuration against a real DynamoDB Local: each
//! test with a configuration table of its own.

use api_tests::write_ctx;
use licensing::domain::{Audience, InstanceName, UserService, UserServiceConfig};
use licensing::store::ConfigStore;
use licensing::store::dynamo::DynamoConfigStore;

async fn store() -> DynamoConfigStore {
    api_tests::harness::Tables::create().await.configs()
}

fn config(name: &str, service: &str) -> UserServiceConfig {
    UserServiceConfig {
        instance_name: InstanceName::parse(name).unwrap(),
        technical_name: UserService::parse(service).unwrap(),
        display_name: format!("{service} ({name})"),
        description: "line one\nline two".into(),
        no_more_assignable: true,
        audience: Audience {
            for_hg: true,
            for_enduser: true,
            ..Audience::default()
        },
        add_data: serde_json::json!({"n": 1.5, "list": [null, "x"], "nested": {"é": true}})
            .as_object()
            .unwrap()
            .clone(),
    }
}

#[tokio::test]
async fn objects_round_trip_exactly() {
    let store = store().await;
    let c = config("round trip no. 1", "Basic Call Logs");
    assert!(
        store
            .create_user_service_config(&write_ctx(), &c)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .user_service_config(&c.instance_name)
            .await
            .unwrap()
            .map(|t| t.value),
        Some(c)
    );
    let none = InstanceName::parse("never created").unwrap();
    assert_eq!(
        store
            .user_service_config(&none)
            .await
            .unwrap()
            .map(|t| t.value),
        None
    );
}

#[tokio::test]
async fn concurrent_creates_of_one_instance_store_exactly_one() {
    let store = store().await;
    let attempts = (0..20).map(|i| {
        let store = store.clone();
        // Different contents, so the winner can be identified.
        let mut c = config("contested", "Call Return");
        c.description = format!("attempt {i}");
        tokio::spawn(async move {
            (
                store
                    .create_user_service_config(&write_ctx(), &c)
                    .await
                    .unwrap(),
                c,
            )
        })
    });
    let mut winners = Vec::new();
    for attempt in attempts {
        let (created, c) = attempt.await.unwrap();
        if created {
            winners.push(c);
        }
    }
    assert_eq!(winners.len(), 1);
    let stored = store
        .user_service_config(&winners[0].instance_name)
        .await
        .unwrap()
        .map(|t| t.value);
    assert_eq!(stored.as_ref(), Some(&winners[0]));
}

#[tokio::test]
async fn put_replaces_and_delete_reports_presence() {
    let store = store().await;
    let name = "replace me";
    store
        .put_user_service_config(&write_ctx(), &config(name, "Call Return"), None)
        .await
        .unwrap();
    let replacement = config(name, "Call Waiting");
    store
        .put_user_service_config(&write_ctx(), &replacement, None)
        .await
        .unwrap();
    assert_eq!(
        store
            .user_service_config(&replacement.instance_name)
            .await
            .unwrap()
            .map(|t| t.value),
        Some(replacement.clone())
    );
    assert!(
        store
            .delete_user_service_config(&write_ctx(), &replacement.instance_name, None)
            .await
            .unwrap()
    );
    assert!(
        !store
            .delete_user_service_config(&write_ctx(), &replacement.instance_name, None)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn the_list_is_in_instance_name_order() {
    let store = store().await;
    for name in ["order-c", "order-a", "order-b"] {
        store
            .put_user_service_config(&write_ctx(), &config(name, "Call Return"), None)
            .await
            .unwrap();
    }
    let names: Vec<String> = store
        .user_service_configs()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.instance_name.as_str().to_owned())
        .filter(|n| n.starts_with("order-"))
        .collect();
    assert_eq!(names, ["order-a", "order-b", "order-c"]);
}
