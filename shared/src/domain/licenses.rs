//! A group's licenses: the read model of GET and the changes of PUT.

use super::{Allocation, GroupService, PackName, UserService};

/// Something a group can hold a license for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Licensable {
    User(UserService),
    Group(GroupService),
    Pack(PackName),
}

/// One license record of a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct License {
    pub allocation: Allocation,
    /// Live usage: assignments of a user service or pack, instances of a group service, or 1
    /// while a `noInstance` group service is assigned to the group.
    pub in_use: u32,
    /// Group services only: the service is assigned to the group.
    pub assigned: bool,
}

impl License {
    pub const NONE: License = License {
        allocation: Allocation::NOT_LICENSED,
        in_use: 0,
        assigned: false,
    };
}

/// Everything a group holds, in catalog order for services and name order for packs.
///
/// Services without a record are not licensed; the table is dense so a GET renders the whole
/// catalog without lookups.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupLicenses {
    user: Vec<License>,
    group: Vec<License>,
    packs: Vec<(PackName, License)>,
}

impl Default for GroupLicenses {
    fn default() -> Self {
        Self {
            user: vec![License::NONE; UserService::count()],
            group: vec![License::NONE; GroupService::count()],
            packs: Vec::new(),
        }
    }
}

impl GroupLicenses {
    /// Records one stored license. Packs must arrive in name order (storage returns them so).
    pub fn insert(&mut self, item: Licensable, license: License) {
        match item {
            Licensable::User(s) => self.user[s.index()] = license,
            Licensable::Group(s) => self.group[s.index()] = license,
            Licensable::Pack(p) => self.packs.push((p, license)),
        }
    }

    pub fn user_services(&self) -> impl Iterator<Item = (UserService, &License)> {
        UserService::all().zip(&self.user)
    }

    pub fn group_services(&self) -> impl Iterator<Item = (GroupService, &License)> {
        GroupService::all().zip(&self.group)
    }

    pub fn service_packs(&self) -> impl Iterator<Item = (&PackName, &License)> {
        self.packs.iter().map(|(p, l)| (p, l))
    }

    pub fn user_service(&self, s: UserService) -> &License {
        &self.user[s.index()]
    }

    pub fn group_service(&self, s: GroupService) -> &License {
        &self.group[s.index()]
    }
}

/// One item of a licenses PUT, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicenseChange {
    pub item: Licensable,
    pub allocation: Allocation,
    /// `auto_assign` was requested: a group service that ends up licensed is assigned to the group.
    pub auto_assign: bool,
}

/// What a change does to the stored record: the rule storage turns into one conditional write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageEffect {
    /// `maximum: 0`: the record goes away, allowed only while nothing is in use.
    Unlicense,
    /// The allocation is set. `in_use` is kept unless `set_in_use` says otherwise; the write is
    /// refused when a limited maximum would fall below the usage it finds.
    License {
        allocation: Allocation,
        assign: bool,
        set_in_use: Option<u32>,
    },
}

impl LicenseChange {
    /// A PUT is one transaction of at most 100 actions: up to 2 per item (the license and the
    /// tenant pool), the allocations version, an `Idempotency-Key`'s record and the audit
    /// record.
    pub const MAX_PER_REQUEST: usize = 48;

    pub fn effect(&self) -> UsageEffect {
        if !self.allocation.is_licensed() {
            return UsageEffect::Unlicense;
        }
        let assign = self.auto_assign && matches!(self.item, Licensable::Group(_));
        // A noInstance group service counts exactly 1 while assigned to the group.
        let set_in_use = match self.item {
            Licensable::Group(s) if assign && s.no_instance() => Some(1),
            _ => None,
        };
        UsageEffect::License {
            allocation: self.allocation,
            assign,
            set_in_use,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(name: &str) -> Licensable {
        Licensable::Group(GroupService::parse(name).unwrap())
    }

    fn change(item: Licensable, allocation: Allocation, auto_assign: bool) -> LicenseChange {
        LicenseChange {
            item,
            allocation,
            auto_assign,
        }
    }

    #[test]
    fn maximum_zero_unlicenses_whatever_else_is_asked() {
        let c = change(group("Voice Messaging Group"), Allocation::Limited(0), true);
        assert_eq!(c.effect(), UsageEffect::Unlicense);
    }

    #[test]
    fn auto_assign_of_a_no_instance_service_counts_one() {
        let c = change(group("Voice Messaging Group"), Allocation::Limited(1), true);
        assert_eq!(
            c.effect(),
            UsageEffect::License {
                allocation: Allocation::Limited(1),
                assign: true,
                set_in_use: Some(1)
            }
        );
    }

    #[test]
    fn auto_assign_of_an_instance_service_keeps_the_instance_count() {
        let c = change(group("Hunt Group"), Allocation::Unlimited, true);
        assert_eq!(
            c.effect(),
            UsageEffect::License {
                allocation: Allocation::Unlimited,
                assign: true,
                set_in_use: None
            }
        );
    }

    #[test]
    fn auto_assign_does_not_touch_user_services_or_packs() {
        let user = Licensable::User(UserService::parse("Call Forwarding Always").unwrap());
        let pack = Licensable::Pack(PackName::parse("Basic CFx").unwrap());
        for item in [user, pack] {
            let c = change(item, Allocation::Limited(5), true);
            assert_eq!(
                c.effect(),
                UsageEffect::License {
                    allocation: Allocation::Limited(5),
                    assign: false,
                    set_in_use: None
                }
            );
        }
    }

    #[test]
    fn an_empty_group_lists_the_whole_catalog_unlicensed() {
        let g = GroupLicenses::default();
        assert_eq!(g.user_services().count(), UserService::count());
        assert!(g.group_services().all(|(_, l)| *l == License::NONE));
        assert_eq!(g.service_packs().count(), 0);
    }
}
