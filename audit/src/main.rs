//! `licensing-audit [--table NAME] [--tenant ID]`: checks the licensing table's invariants
//! (`lib.rs`), prints each discrepancy, exits 1 if there is any (2 if the table cannot be read).
//! The table defaults to `$LICENSES_TABLE`; the SDK finds DynamoDB as every function does
//! (`AWS_ENDPOINT_URL_DYNAMODB`, or the AWS profile and region). Read-only.

use std::process::ExitCode;

const USAGE: &str = "usage: licensing-audit [--table NAME] [--tenant ID]";

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let mut table = std::env::var("LICENSES_TABLE").ok();
    let mut tenant = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--table", Some(v)) => table = Some(v),
            ("--tenant", Some(v)) => tenant = Some(v),
            _ => {
                eprintln!("{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let Some(table) = table else {
        eprintln!("{USAGE} (or set LICENSES_TABLE)");
        return ExitCode::from(2);
    };
    let client = licensing::lambda::desktop_client().await;
    match licensing_audit::audit(&client, &table, tenant.as_deref()).await {
        Ok(report) => {
            print!("{}", report.text(&table));
            if report.discrepancies.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("licensing-audit: {table}: {e}");
            ExitCode::from(2)
        }
    }
}
