//! Views more than one resource answers.

use crate::domain::Allocation;
use serde::Serialize;

/// `{"unlimited": true}` or `{"unlimited": false, "maximum": N}`, with `noInstance` on group
/// services: a license's allocation, in the group and the tenant views.
#[derive(Serialize)]
pub struct Allocated {
    unlimited: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    maximum: Option<u32>,
    #[serde(rename = "noInstance", skip_serializing_if = "Option::is_none")]
    no_instance: Option<bool>,
}

impl Allocated {
    pub fn of(allocation: Allocation, no_instance: Option<bool>) -> Self {
        Allocated {
            unlimited: allocation == Allocation::Unlimited,
            maximum: allocation.maximum(),
            no_instance,
        }
    }
}

/// `{"name", "assigned"}`: an item of a usage answer.
#[derive(Serialize)]
pub struct Assigned<'a> {
    pub name: &'a str,
    pub assigned: bool,
}
