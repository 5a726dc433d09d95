//! Views more than one resource answers.

use crate::domain::{Allocation, UserHoldings};
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

/// What a user holds: what is assigned (`services` directly, `servicePacks`) and every service
/// the user holds by any route (`effectiveServices`, each with its routes: `direct` and packs).
/// The single user's GET and each entry of a group's users list.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HoldingsView<'a> {
    pub services: Vec<Assigned<'a>>,
    pub service_packs: Vec<Assigned<'a>>,
    pub effective_services: Vec<Effective<'a>>,
}

#[derive(Serialize)]
pub struct Effective<'a> {
    pub name: &'static str,
    pub via: Vec<&'a str>,
}

impl<'a> HoldingsView<'a> {
    pub fn of(holdings: &'a UserHoldings) -> Self {
        let assigned = |name| Assigned {
            name,
            assigned: true,
        };
        HoldingsView {
            services: holdings.direct().map(|s| assigned(s.name())).collect(),
            service_packs: holdings
                .packs
                .iter()
                .map(|p| assigned(p.as_str()))
                .collect(),
            effective_services: holdings
                .services
                .iter()
                .map(|h| Effective {
                    name: h.service.name(),
                    via: h.via().collect(),
                })
                .collect(),
        }
    }
}
