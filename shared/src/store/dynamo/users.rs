//! A group's users, listed: pages of the users holding anything, or one service or pack, each
//! with what it holds. The records of a user are contiguous in the group's partition
//! (`USER#<user>#...`, `keys.rs`), so a page is one walk of `USER#` sort keys from where the last
//! one ended, grouping records per user.
//!
//! Holdings are not indexed by service: the holders of a service are found by reading the
//! users' records and keeping those who hold it, at most [`SELECTIVE_PAGES`] pages of records
//! per request; a page may then come back short (even empty) with a cursor to continue.

use super::DynamoStore;
use super::holdings::{UserRecords, decode};
use super::item::Item;
use super::keys::{
    USERS_END, USERS_START, after_user, group_pk, unescape, user_part, user_prefix_of,
};
use super::retry::read_failure;
use crate::domain::{GroupRef, UserId};
use crate::store::{Holds, StoreError, UserCursor, UsersPage};
use aws_sdk_dynamodb::types::AttributeValue;

/// The most pages of records (1 MB each) one selective list reads.
const SELECTIVE_PAGES: usize = 4;

/// Items per page of an unselective list, per user asked for: a user has a few records.
const ITEMS_PER_USER: usize = 8;

impl DynamoStore {
    pub(super) async fn users_page(
        &self,
        group: &GroupRef,
        holds: &Holds,
        after: Option<&UserCursor>,
        limit: usize,
    ) -> Result<UsersPage, StoreError> {
        let pk = group_pk(group);
        let from = after.map_or_else(|| USERS_START.to_owned(), |c| after_user(&c.0));
        // Every user listed holds something, so an unselective page needs only a few records
        // per user; a selective one reads full pages.
        let page_items = (*holds == Holds::Anything)
            .then(|| i32::try_from((limit + 1) * ITEMS_PER_USER).unwrap_or(i32::MAX));
        let mut walk = Walk {
            holds,
            limit,
            users: Vec::new(),
            current: None,
            last_done: None,
        };
        let mut start: Option<Item> = None;
        let mut pages = 0;
        loop {
            let page = self
                .client()
                .query()
                .table_name(self.table())
                .key_condition_expression("PK = :pk AND SK BETWEEN :from AND :to")
                .expression_attribute_values(":pk", AttributeValue::S(pk.clone()))
                .expression_attribute_values(":from", AttributeValue::S(from.clone()))
                .expression_attribute_values(":to", AttributeValue::S(USERS_END.to_owned()))
                .consistent_read(true)
                .set_limit(page_items)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(read_failure)?;
            pages += 1;
            for item in page.items.unwrap_or_default() {
                if let Some(next) = walk.push(item) {
                    return Ok(walk.page(Some(next)));
                }
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => {
                    // The last user's records are all read.
                    return Ok(match walk.finish_current() {
                        Some(next) => walk.page(Some(next)),
                        None => walk.page(None),
                    });
                }
            }
            if *holds != Holds::Anything
                && pages >= SELECTIVE_PAGES
                && let Some(done) = walk.last_done.clone()
            {
                // The bound of a selective list: continue after the last user read whole.
                return Ok(walk.page(Some(UserCursor(done))));
            }
        }
    }
}

/// One walk over users' records in key order.
struct Walk<'a> {
    holds: &'a Holds,
    limit: usize,
    users: Vec<(String, UserRecords)>,
    /// The user whose records are being read: its key part and records so far.
    current: Option<(String, Vec<Item>)>,
    /// The key part of the last user read whole, listed or not.
    last_done: Option<String>,
}

impl Walk<'_> {
    /// Takes the next record; `Some` with where the page ends once a user past the page's
    /// `limit` is known to be listed too.
    fn push(&mut self, item: Item) -> Option<UserCursor> {
        let part = match item.get("SK") {
            Some(AttributeValue::S(sk)) => user_part(sk)?.to_owned(),
            _ => return None,
        };
        if self.current.as_ref().is_some_and(|(p, _)| *p != part)
            && let Some(next) = self.finish_current()
        {
            return Some(next);
        }
        self.current
            .get_or_insert_with(|| (part, Vec::new()))
            .1
            .push(item);
        None
    }

    /// Ends the current user: listed when it holds what the walk selects; `Some` with the end
    /// of the page when the page is already full (so there is a next page).
    fn finish_current(&mut self) -> Option<UserCursor> {
        let (part, items) = self.current.take()?;
        let records = decode(&user_prefix_of(&part), &items);
        if records.holds(self.holds) {
            if self.users.len() == self.limit {
                let (last, _) = self.users.last()?;
                return Some(UserCursor(last.clone()));
            }
            self.users.push((part.clone(), records));
        }
        self.last_done = Some(part);
        None
    }

    fn page(self, next: Option<UserCursor>) -> UsersPage {
        UsersPage {
            users: self
                .users
                .into_iter()
                .filter_map(|(part, records)| {
                    Some((
                        UserId::parse(unescape(&part)).ok()?,
                        records.into_holdings(),
                    ))
                })
                .collect(),
            next,
        }
    }
}
