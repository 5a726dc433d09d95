//! `make run`'s server: both routers on `127.0.0.1:$PORT` (default 9000) against the DynamoDB
//! that `AWS_ENDPOINT_URL_DYNAMODB` points at, tables from `LICENSES_TABLE` and
//! `USER_SERVICES_TABLE`, and the API reference at `/docs` from the checkout at
//! `LICENSING_ROOT`. Stops on Ctrl-C or SIGTERM.

use licensing::lambda::{desktop_client, env, init_logging};
use licensing::store::dynamo::DynamoConfigStore;
use licensing::store::dynamo::DynamoStore;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    init_logging();
    match serve().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("local-api: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve() -> Result<(), String> {
    let port: u16 = match std::env::var("PORT") {
        Ok(p) => p.parse().map_err(|_| format!("PORT={p} is not a port"))?,
        Err(_) => 9000,
    };
    let client = desktop_client().await;
    let store = DynamoStore::new(client.clone(), env("LICENSES_TABLE")?);
    let configs = DynamoConfigStore::new(client, env("USER_SERVICES_TABLE")?);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| format!("cannot listen on 127.0.0.1:{port}: {e}"))?;
    eprintln!(
        "local-api: serving http://127.0.0.1:{port}. LOCAL ONLY: bearer tokens are decoded \
         WITHOUT verification and a request without one acts as an operator"
    );
    // The reference at /docs: the files of the checkout `make run` runs in.
    let docs = std::env::var("LICENSING_ROOT")
        .ok()
        .map(|root| local_api::docs::Docs::of_checkout(std::path::Path::new(&root)));
    axum::serve(listener, local_api::app(store, configs, docs))
        .with_graceful_shutdown(shutdown())
        .await
        .map_err(|e| e.to_string())
}

async fn shutdown() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
