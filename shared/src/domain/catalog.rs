//! The BroadWorks service catalog: which user and group services exist, and which group services
//! have instances.
//!
//! The catalog is data (`data/broadworks-services.json`, a copy of the operator's catalog) compiled
//! into the binary and parsed once per cold start. Services are then handled as small indices into
//! it, so a validated service name costs no allocation and cannot name an unknown service.

use serde::Deserialize;
use std::collections::HashMap;
use std::fmt;
use std::sync::LazyLock;

const CATALOG_JSON: &str = include_str!("../../data/broadworks-services.json");

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CatalogFile {
    user_services: Vec<String>,
    group_services: Vec<GroupServiceEntry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GroupServiceEntry {
    name: String,
    no_instance: bool,
}

struct Catalog {
    user: &'static [String],
    group: &'static [GroupServiceEntry],
    user_index: HashMap<&'static str, u16>,
    group_index: HashMap<&'static str, u16>,
    /// Group services by slug, for paths (`hunt-group`).
    group_slugs: HashMap<String, u16>,
    /// User services by slug, for paths (`call-waiting`).
    user_slugs: HashMap<String, u16>,
}

static CATALOG: LazyLock<Catalog> = LazyLock::new(|| {
    // The file is part of the build; a malformed copy is a build defect that the unit tests catch.
    let file: CatalogFile =
        serde_json::from_str(CATALOG_JSON).expect("embedded service catalog is valid JSON");
    // Leaked once per process so the name index can borrow the names for 'static.
    let user: &'static [String] = Vec::leak(file.user_services);
    let group: &'static [GroupServiceEntry] = Vec::leak(file.group_services);
    Catalog {
        user_index: (0u16..).zip(user).map(|(i, n)| (n.as_str(), i)).collect(),
        group_index: (0u16..)
            .zip(group)
            .map(|(i, e)| (e.name.as_str(), i))
            .collect(),
        group_slugs: (0u16..)
            .zip(group)
            .map(|(i, e)| (slug(&e.name), i))
            .collect(),
        user_slugs: (0u16..).zip(user).map(|(i, n)| (slug(n), i)).collect(),
        user,
        group,
    }
});

/// A name that is not a service of the requested kind in the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownService;

impl fmt::Display for UnknownService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("is not a service of the catalog")
    }
}

/// A user service of the catalog ("Call Forwarding Always").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserService(u16);

/// A group service of the catalog ("Hunt Group").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupService(u16);

impl UserService {
    pub fn parse(name: &str) -> Result<Self, UnknownService> {
        CATALOG
            .user_index
            .get(name)
            .map(|&i| Self(i))
            .ok_or(UnknownService)
    }

    pub fn name(self) -> &'static str {
        &CATALOG.user[self.0 as usize]
    }

    /// A `{service}` of a path: the catalog name or its [`slug`].
    pub fn from_path(value: &str) -> Result<Self, UnknownService> {
        Self::parse(value).or_else(|_| {
            CATALOG
                .user_slugs
                .get(value)
                .map(|&i| Self(i))
                .ok_or(UnknownService)
        })
    }

    /// The name's [`slug`].
    pub fn slug(self) -> String {
        slug(self.name())
    }

    /// Position in catalog order, for dense per-service tables.
    pub fn index(self) -> usize {
        self.0 as usize
    }

    pub fn count() -> usize {
        CATALOG.user.len()
    }

    /// Every user service, in catalog order.
    pub fn all() -> impl ExactSizeIterator<Item = Self> {
        (0..CATALOG.user.len() as u16).map(Self)
    }
}

/// A service name as it can travel in a path: lowercase ASCII letters and digits, each run of
/// other characters one `-`, no leading or trailing `-` ("Find-me/Follow-me" →
/// `find-me-follow-me`). Catalog names with `/` could not be addressed through API Gateway,
/// which decodes `%2F` into a new segment.
pub fn slug(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    if out.ends_with('-') {
        out.pop();
    }
    out
}

impl GroupService {
    pub fn parse(name: &str) -> Result<Self, UnknownService> {
        CATALOG
            .group_index
            .get(name)
            .map(|&i| Self(i))
            .ok_or(UnknownService)
    }

    /// A `{service}` of a path: the catalog name or its [`slug`].
    pub fn from_path(value: &str) -> Result<Self, UnknownService> {
        Self::parse(value).or_else(|_| {
            CATALOG
                .group_slugs
                .get(value)
                .map(|&i| Self(i))
                .ok_or(UnknownService)
        })
    }

    /// The name's [`slug`].
    pub fn slug(self) -> String {
        slug(self.name())
    }

    pub fn name(self) -> &'static str {
        &CATALOG.group[self.0 as usize].name
    }

    /// True for services assigned to the group as a whole ("Voice Messaging Group"); false for
    /// services whose usage is counted in instances ("Hunt Group").
    pub fn no_instance(self) -> bool {
        CATALOG.group[self.0 as usize].no_instance
    }

    pub fn index(self) -> usize {
        self.0 as usize
    }

    pub fn count() -> usize {
        CATALOG.group.len()
    }

    /// Every group service, in catalog order.
    pub fn all() -> impl ExactSizeIterator<Item = Self> {
        (0..CATALOG.group.len() as u16).map(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_loads_both_kinds() {
        assert!(UserService::count() > 200);
        assert!(GroupService::count() > 30);
        assert_eq!(UserService::all().len(), UserService::count());
    }

    #[test]
    fn names_resolve_to_their_own_kind_only() {
        let cfa = UserService::parse("Call Forwarding Always").unwrap();
        assert_eq!(cfa.name(), "Call Forwarding Always");
        assert_eq!(
            GroupService::parse("Call Forwarding Always"),
            Err(UnknownService)
        );
        assert_eq!(UserService::parse("Hunt Group"), Err(UnknownService));
        assert_eq!(
            UserService::parse("call forwarding always"),
            Err(UnknownService)
        );
    }

    #[test]
    fn instance_flag_comes_from_the_catalog() {
        assert!(!GroupService::parse("Hunt Group").unwrap().no_instance());
        assert!(
            GroupService::parse("Voice Messaging Group")
                .unwrap()
                .no_instance()
        );
    }

    #[test]
    fn every_name_round_trips() {
        for s in UserService::all() {
            assert_eq!(UserService::parse(s.name()), Ok(s));
        }
        for s in GroupService::all() {
            assert_eq!(GroupService::parse(s.name()), Ok(s));
        }
    }

    #[test]
    fn group_services_are_found_by_name_or_slug_and_slugs_are_unique() {
        assert_eq!(slug("Hunt Group"), "hunt-group");
        assert_eq!(slug("Find-me/Follow-me"), "find-me-follow-me");
        assert_eq!(slug(" Auto Attendant - Video "), "auto-attendant-video");
        let fmfm = GroupService::parse("Find-me/Follow-me").unwrap();
        assert_eq!(GroupService::from_path("find-me-follow-me"), Ok(fmfm));
        assert_eq!(GroupService::from_path("Find-me/Follow-me"), Ok(fmfm));
        assert!(
            GroupService::from_path("Hunt-Group").is_err(),
            "slugs are lowercase"
        );
        let cw = UserService::parse("Call Waiting").unwrap();
        assert_eq!(UserService::from_path("call-waiting"), Ok(cw));
        assert_eq!(UserService::from_path("Call Waiting"), Ok(cw));
        let users: std::collections::HashSet<_> = UserService::all().map(|s| s.slug()).collect();
        assert_eq!(
            users.len(),
            UserService::count(),
            "two services share a slug"
        );
        let slugs: std::collections::HashSet<_> = GroupService::all().map(|s| s.slug()).collect();
        assert_eq!(
            slugs.len(),
            GroupService::count(),
            "two services share a slug"
        );
        assert!(slugs.iter().all(|s| !s.is_empty()));
    }
}
