//! Operator-defined user-services configuration: which user services a client (a portal, a
//! workflow) should offer, and for what (hunt groups, call centers, IVR, end users).
//!
//! Objects are stored under an instance name; several instances may describe the same catalog
//! user service.

use super::{InstanceName, UserService};

/// What a configuration object may be offered for. Also the shape of a list filter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Audience {
    pub for_hg: bool,
    pub for_ivr: bool,
    pub for_cc: bool,
    pub for_enduser: bool,
}

impl Audience {
    /// The field names, as in the API and in storage.
    pub const FIELDS: [&'static str; 4] = ["for_hg", "for_ivr", "for_cc", "for_enduser"];

    pub fn get(&self, field: &str) -> Option<bool> {
        match field {
            "for_hg" => Some(self.for_hg),
            "for_ivr" => Some(self.for_ivr),
            "for_cc" => Some(self.for_cc),
            "for_enduser" => Some(self.for_enduser),
            _ => None,
        }
    }

    /// Sets a flag by field name; false for a name that is not a flag.
    pub fn set(&mut self, field: &str, value: bool) -> bool {
        let flag = match field {
            "for_hg" => &mut self.for_hg,
            "for_ivr" => &mut self.for_ivr,
            "for_cc" => &mut self.for_cc,
            "for_enduser" => &mut self.for_enduser,
            _ => return false,
        };
        *flag = value;
        true
    }

    /// Read as a filter: every flag that is true here must be true in `audience` (AND);
    /// flags that are false filter nothing.
    pub fn admits(&self, audience: &Audience) -> bool {
        (!self.for_hg || audience.for_hg)
            && (!self.for_ivr || audience.for_ivr)
            && (!self.for_cc || audience.for_cc)
            && (!self.for_enduser || audience.for_enduser)
    }

    /// Whether, read as a filter, this filters anything at all.
    pub fn is_filtering(&self) -> bool {
        self.for_hg || self.for_ivr || self.for_cc || self.for_enduser
    }

    /// The AND of two filters.
    pub fn and(self, other: Audience) -> Audience {
        Audience {
            for_hg: self.for_hg || other.for_hg,
            for_ivr: self.for_ivr || other.for_ivr,
            for_cc: self.for_cc || other.for_cc,
            for_enduser: self.for_enduser || other.for_enduser,
        }
    }
}

/// One configuration object, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct UserServiceConfig {
    pub instance_name: InstanceName,
    pub technical_name: UserService,
    pub display_name: String,
    pub description: String,
    pub no_more_assignable: bool,
    pub audience: Audience,
    /// A JSON object kept for future use, at most [`UserServiceConfig::MAX_ADD_DATA_BYTES`]
    /// serialized.
    pub add_data: serde_json::Map<String, serde_json::Value>,
}

impl UserServiceConfig {
    pub const MAX_DISPLAY_NAME_CHARS: usize = 200;
    pub const MAX_DESCRIPTION_CHARS: usize = 2_000;
    pub const MAX_ADD_DATA_BYTES: usize = 16 * 1024;
}

/// The whole object, as GET, POST and PUT answer it.
#[derive(serde::Serialize)]
pub struct ConfigView<'a> {
    technical_name: &'a str,
    display_name: &'a str,
    description: &'a str,
    no_more_assignable: bool,
    for_hg: bool,
    for_ivr: bool,
    for_cc: bool,
    for_enduser: bool,
    add_data: &'a serde_json::Map<String, serde_json::Value>,
    instance_name: &'a str,
}

impl UserServiceConfig {
    /// The whole object as the API shows it (GET, POST and PUT answers, audit records).
    pub fn view(&self) -> ConfigView<'_> {
        let c = self;
        ConfigView {
            technical_name: c.technical_name.name(),
            display_name: &c.display_name,
            description: &c.description,
            no_more_assignable: c.no_more_assignable,
            for_hg: c.audience.for_hg,
            for_ivr: c.audience.for_ivr,
            for_cc: c.audience.for_cc,
            for_enduser: c.audience.for_enduser,
            add_data: &c.add_data,
            instance_name: c.instance_name.as_str(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::IdError;

    #[test]
    fn instance_names_follow_the_id_rules() {
        assert!(InstanceName::parse("For_HG").is_ok());
        assert!(InstanceName::parse("Basic Call Logs").is_ok());
        assert_eq!(InstanceName::parse("a/b"), Err(IdError::Unaddressable('/')));
        assert_eq!(InstanceName::parse(""), Err(IdError::Empty));
        assert_eq!(
            InstanceName::parse("x".repeat(81)),
            Err(IdError::TooLong { max: 80 })
        );
    }

    #[test]
    fn filters_combine_with_and_and_false_filters_nothing() {
        let hg_only = Audience {
            for_hg: true,
            ..Audience::default()
        };
        let hg_and_cc = Audience {
            for_hg: true,
            for_cc: true,
            ..Audience::default()
        };
        assert!(Audience::default().admits(&Audience::default()));
        assert!(hg_only.admits(&hg_and_cc));
        assert!(!hg_and_cc.admits(&hg_only));
        assert!(hg_and_cc.admits(&hg_and_cc));
        assert_eq!(
            hg_only.and(Audience {
                for_cc: true,
                ..Audience::default()
            }),
            hg_and_cc
        );
        assert!(!Audience::default().is_filtering());
    }

    #[test]
    fn flags_are_addressed_by_their_api_names() {
        let mut a = Audience::default();
        for f in Audience::FIELDS {
            assert!(a.set(f, true));
            assert_eq!(a.get(f), Some(true));
        }
        assert!(!a.set("for_xx", true));
        assert_eq!(a.get("for_xx"), None);
    }
}
