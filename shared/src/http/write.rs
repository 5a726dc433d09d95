//! What a write handler takes besides its input: the request's deadline (which the store's
//! retries keep) and, for a request with an `Idempotency-Key`, the record its transaction puts.
//!
//! A handler computes its success answer before it writes, and [`Write::answer`] turns it into
//! both the response and the [`WriteCtx`] whose record carries that same answer; the store puts
//! the record in the write's own transaction, so the two commit together.

use super::auth::Who;
use super::error::ApiError;
use super::front::{self, Deadline, RequestId, RouteTemplate};
use super::idempotency::{Kept, Keyed};
use super::path::PathIds;
use super::response::{json_bytes, json_response, no_content};
use crate::store::WriteCtx;
use crate::store::audit::{Actor, Trail};
use crate::store::idempotency::{Answer, Record};
use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::Response;
use serde::Serialize;
use std::time::Instant;

/// The write side of a request (an extractor).
pub struct Write {
    deadline: Instant,
    keyed: Option<Keyed>,
    actor: Option<Actor>,
}

impl<S: Send + Sync> FromRequestParts<S> for Write {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let deadline = parts
            .extensions
            .get::<Deadline>()
            .map_or_else(|| Instant::now() + front::DEADLINE, |d| d.0);
        Ok(Write {
            deadline,
            keyed: parts.extensions.get::<Keyed>().cloned(),
            actor: actor(parts),
        })
    }
}

/// Who makes the write, for its audit record: from what the front and the authorization layer
/// left in the request (none outside a matched, authorized route).
fn actor(parts: &Parts) -> Option<Actor> {
    let ext = &parts.extensions;
    let who = ext.get::<Who>()?;
    let ids = ext.get::<PathIds>()?;
    let trail = match (&ids.tenant, &ids.group) {
        (Some(tenant), group) => Trail::Tenant {
            tenant: tenant.clone(),
            group: group.as_ref().map(|g| g.group.clone()),
        },
        (None, _) => Trail::Configs,
    };
    Some(Actor {
        sub: who.sub.clone(),
        role: who.role,
        request_id: ext
            .get::<RequestId>()
            .map(|r| r.0.clone())
            .unwrap_or_default(),
        method: parts.method.to_string(),
        route: ext
            .get::<RouteTemplate>()
            .map(|r| r.0.clone())
            .unwrap_or_default(),
        trail,
    })
}

impl Write {
    /// The JSON success answer `status` / `body`, and the context of the write that must commit
    /// for it to be true.
    pub fn answer<T: Serialize + ?Sized>(
        &self,
        status: StatusCode,
        body: &T,
    ) -> (WriteCtx, Response) {
        match serde_json::to_vec(body) {
            Ok(bytes) => self.kept(status, bytes),
            // Our own views always serialize; if one did not, the 500 is no answer to keep.
            Err(_) => (self.unkept(), json_response(status, body)),
        }
    }

    /// A 204 success answer, and the context of its write.
    pub fn no_content(&self) -> (WriteCtx, Response) {
        self.kept(StatusCode::NO_CONTENT, Vec::new())
    }

    fn unkept(&self) -> WriteCtx {
        WriteCtx {
            deadline: self.deadline,
            record: None,
            actor: self.actor.clone(),
        }
    }

    /// A success answer already encoded (JSON, or empty for a 204), and the context of its
    /// write.
    pub fn kept(&self, status: StatusCode, bytes: Vec<u8>) -> (WriteCtx, Response) {
        let record = self.keyed.as_ref().map(|keyed| {
            let answer = Answer {
                status: status.as_u16(),
                body: String::from_utf8_lossy(&bytes).into_owned(),
            };
            Record::new(&keyed.scope, &keyed.key, &keyed.fingerprint, answer)
        });
        let mut response = if bytes.is_empty() && status == StatusCode::NO_CONTENT {
            no_content()
        } else {
            json_bytes(status, bytes)
        };
        if record.is_some() {
            response.extensions_mut().insert(Kept);
        }
        let ctx = WriteCtx {
            deadline: self.deadline,
            record,
            actor: self.actor.clone(),
        };
        (ctx, response)
    }
}
