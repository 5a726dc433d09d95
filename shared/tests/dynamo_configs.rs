//! The DynamoDB adapter of the user-services configuration against a real DynamoDB Local
//! (started by `scripts/stack.sh test`). The run gets its own table.

use aws_sdk_dynamodb::Client;
use licensing::domain::{Audience, InstanceName, UserService, UserServiceConfig};
use licensing::store::ConfigStore;
use licensing::store::dynamo_configs::DynamoConfigStore;
use licensing::store::schema::ensure_table;
use tokio::sync::OnceCell;

static TABLE: OnceCell<String> = OnceCell::const_new();

async fn store() -> DynamoConfigStore {
    assert!(
        std::env::var("AWS_ENDPOINT_URL_DYNAMODB").is_ok(),
        "AWS_ENDPOINT_URL_DYNAMODB is not set: run through `make test` (scripts/stack.sh test)"
    );
    let client = Client::new(&aws_config::from_env().load().await);
    let table = TABLE
        .get_or_init(|| async {
            let name = format!("configs-test-{}", std::process::id());
            ensure_table(&client, &name)
                .await
                .expect("create the test table");
            name
        })
        .await;
    DynamoConfigStore::new(client, table.clone())
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
    let c = config("round trip #1", "Basic Call Logs");
    assert!(store.create_user_service_config(&c).await.unwrap());
    assert_eq!(
        store.user_service_config(&c.instance_name).await.unwrap(),
        Some(c)
    );
    let none = InstanceName::parse("never created").unwrap();
    assert_eq!(store.user_service_config(&none).await.unwrap(), None);
}

#[tokio::test]
async fn concurrent_creates_of_one_instance_store_exactly_one() {
    let store = store().await;
    let attempts = (0..20).map(|i| {
        let store = store.clone();
        // Different contents, so the winner can be identified.
        let mut c = config("contested", "Call Return");
        c.description = format!("attempt {i}");
        tokio::spawn(async move { (store.create_user_service_config(&c).await.unwrap(), c) })
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
        .unwrap();
    assert_eq!(stored.as_ref(), Some(&winners[0]));
}

#[tokio::test]
async fn put_replaces_and_delete_reports_presence() {
    let store = store().await;
    let name = "replace me";
    store
        .put_user_service_config(&config(name, "Call Return"))
        .await
        .unwrap();
    let replacement = config(name, "Call Waiting");
    store.put_user_service_config(&replacement).await.unwrap();
    assert_eq!(
        store
            .user_service_config(&replacement.instance_name)
            .await
            .unwrap(),
        Some(replacement.clone())
    );
    assert!(
        store
            .delete_user_service_config(&replacement.instance_name)
            .await
            .unwrap()
    );
    assert!(
        !store
            .delete_user_service_config(&replacement.instance_name)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn the_list_is_in_instance_name_order() {
    let store = store().await;
    for name in ["order-c", "order-a", "order-b"] {
        store
            .put_user_service_config(&config(name, "Call Return"))
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
