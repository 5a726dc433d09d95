//! Audit records in DynamoDB: one item per write that changed something, put by the write's own
//! transaction ([`action`]) in the table of what it changed, and the reads of a trail.
//!
//! A tenant's records share the partition `AUDIT#TENANT#<t>` (the configuration's
//! `AUDIT#CONFIG#user_services`), sort key `<13-digit Unix ms>#<16 hex random>`, so one `Query`
//! backwards reads a trail newest first and a time range is a key condition. The event is kept
//! as the JSON the API answers (`event`), beside `group` for the group filter and `expires`, the
//! table's TTL attribute (400 days).

use super::item::{Item, built, key, number, read_str, s};
use super::keys::{CONFIGS_AUDIT_PK, audit_pk};
use super::retry::read_failure;
use crate::store::StoreError;
use crate::store::audit::{Actor, AuditPage, AuditQuery, Change, Cursor, RETENTION, Trail};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::primitives::{DateTime, DateTimeFormat};
use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use serde_json::{Value, json};
use std::time::{SystemTime, UNIX_EPOCH};

fn trail_pk(trail: &Trail) -> String {
    match trail {
        Trail::Tenant { tenant, .. } => audit_pk(tenant),
        Trail::Configs => CONFIGS_AUDIT_PK.to_owned(),
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// RFC 3339 in UTC with milliseconds, as the events say when: `2026-12-02T18:16:43.120Z`.
fn rfc3339(ms: i64) -> String {
    let seconds = DateTime::from_secs(ms.div_euclid(1000))
        .fmt(DateTimeFormat::DateTime)
        .unwrap_or_default();
    match seconds.strip_suffix('Z') {
        Some(seconds) => format!("{seconds}.{:03}Z", ms.rem_euclid(1000)),
        None => ms.to_string(),
    }
}

/// The audit record of `actor`'s write that made `changes`, as an action of its transaction.
pub(crate) fn action(
    table: &str,
    actor: &Actor,
    changes: &[Change],
) -> Result<TransactWriteItem, StoreError> {
    let at = now_ms();
    let sk = format!("{at:013}#{:016x}", fastrand::u64(..));
    let (tenant, group) = match &actor.trail {
        Trail::Tenant { tenant, group } => {
            (Some(tenant.as_str()), group.as_ref().map(|g| g.as_str()))
        }
        Trail::Configs => (None, None),
    };
    let mut event = json!({
        "at": rfc3339(at),
        "sub": actor.sub,
        "role": actor.role,
        "request_id": actor.request_id,
        "method": actor.method,
        "route": actor.route,
        "changes": changes,
    });
    if let Some(tenant) = tenant {
        event["tenant_id"] = json!(tenant);
    }
    if let Some(group) = group {
        event["group_id"] = json!(group);
    }
    let mut item = key(&trail_pk(&actor.trail), sk);
    item.insert("event".into(), s(&event.to_string()));
    if let Some(group) = group {
        item.insert("group".into(), s(group));
    }
    let expires = at / 1000 + i64::try_from(RETENTION.as_secs()).unwrap_or(i64::MAX);
    item.insert("expires".into(), number(expires));
    let put = Put::builder().table_name(table).set_item(Some(item));
    Ok(TransactWriteItem::builder()
        .put(built(put.build())?)
        .build())
}

/// The latest time a sort key can hold (13 digits: the year 2286).
const LAST_MS: i64 = 9_999_999_999_999;

/// How many 1 MB pages one read of a filtered trail goes through before it answers what it
/// found, with a cursor where it stopped: a quiet group in a busy tenant costs bounded reads
/// per request, and its admin pages on.
const MAX_PAGES_READ: usize = 4;

/// One page of `trail` in `table` (see [`AuditQuery`]): strongly consistent `Query`s backwards
/// over the time range until a page and one more event are found, the trail ends, or (with a
/// group filter) [`MAX_PAGES_READ`] pages were read, when the page may be short and `next`
/// says where to go on.
pub(crate) async fn events(
    client: &Client,
    table: &str,
    trail: &Trail,
    query: &AuditQuery,
) -> Result<AuditPage, StoreError> {
    let low = format!("{:013}", query.since_ms.unwrap_or(0).clamp(0, LAST_MS));
    // `~` sorts after every character of a sort key's tail.
    let mut high = format!(
        "{:013}~",
        query.until_ms.unwrap_or(LAST_MS).clamp(0, LAST_MS)
    );
    if let Some(Cursor(after)) = &query.after
        && *after < high
    {
        high.clone_from(after);
    }
    if low > high {
        return Ok(AuditPage {
            events: Vec::new(),
            next: None,
        });
    }
    let exclusive = query.after.as_ref().map(|c| c.0.as_str());
    let mut found: Vec<(String, Value)> = Vec::new();
    let mut start: Option<Item> = None;
    let wanted = query.limit + 1;
    let mut pages = 0;
    loop {
        pages += 1;
        let mut request = client
            .query()
            .table_name(table)
            .key_condition_expression("PK = :pk AND SK BETWEEN :low AND :high")
            .expression_attribute_values(":pk", s(&trail_pk(trail)))
            .expression_attribute_values(":low", s(&low))
            .expression_attribute_values(":high", s(&high))
            .scan_index_forward(false)
            .consistent_read(true)
            .set_exclusive_start_key(start.take());
        request = match &query.group {
            Some(group) => request
                .filter_expression("#group = :group")
                .expression_attribute_names("#group", "group")
                .expression_attribute_values(":group", s(group.as_str())),
            // Without a filter every item read is an event: read no more than needed.
            None => request.limit(i32::try_from(wanted - found.len() + 1).unwrap_or(i32::MAX)),
        };
        let page = request.send().await.map_err(read_failure)?;
        for item in page.items() {
            let Some(sk) = read_str(item, "SK") else {
                continue;
            };
            if Some(sk) == exclusive {
                continue;
            }
            // Every record is written as JSON by `action`; one that is not is passed by.
            if let Some(event) = read_str(item, "event").and_then(|e| serde_json::from_str(e).ok())
            {
                found.push((sk.to_owned(), event));
            }
        }
        if found.len() >= wanted {
            break;
        }
        let read_to = match page.last_evaluated_key {
            Some(key) if !key.is_empty() => key,
            _ => break,
        };
        if pages >= MAX_PAGES_READ {
            // A short page: go on from the last item read, not the last event found.
            let next = read_str(&read_to, "SK").map(|sk| Cursor(sk.to_owned()));
            return Ok(AuditPage {
                events: found.into_iter().map(|(_, event)| event).collect(),
                next,
            });
        }
        start = Some(read_to);
    }
    let more = found.len() > query.limit;
    found.truncate(query.limit);
    let next = if more {
        found.last().map(|(sk, _)| Cursor(sk.clone()))
    } else {
        None
    };
    Ok(AuditPage {
        events: found.into_iter().map(|(_, event)| event).collect(),
        next,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_utc_with_milliseconds() {
        assert_eq!(rfc3339(1_764_699_403_120), "2025-12-02T18:16:43.120Z");
        assert_eq!(rfc3339(1_764_699_403_000), "2025-12-02T18:16:43.000Z");
    }
}
