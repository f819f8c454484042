//! `[directory]`: which directory facts of Microsoft's audit records are partner roles.
//!
//! ```toml
//! [directory]
//! groups = { AdminAgents = "AdminAgent" }           # group display name -> partner role
//! roles = { "b0f54661-2d74-4c50-afa3-1ec803f12efe" = "BillingAdmin" }   # role template id
//! ```
//!
//! Optional: a version without it reads no partner role from audit records.

use super::Cx;
use crate::event::Role;
use toml::{Table, Value};

/// The maps of `[directory]`: group names (as written; compared without case) and role
/// template ids (lower case), each to its partner role.
pub(super) type Maps = (Vec<(String, Role)>, Vec<(String, Role)>);

pub(super) fn directory(t: &Table, cx: &mut Cx) -> Maps {
    let Some(d) = t.get("directory") else {
        return (Vec::new(), Vec::new());
    };
    let Some(d) = d.as_table() else {
        cx.problem("directory", "must be a table");
        return (Vec::new(), Vec::new());
    };
    cx.unknown_keys(d, &["groups", "roles"], "directory");
    let mut map = |key: &str, lower: bool| -> Vec<(String, Role)> {
        let at = format!("directory.{key}");
        match d.get(key) {
            None => Vec::new(),
            Some(Value::Table(m)) => m
                .iter()
                .filter_map(|(k, v)| {
                    let role = v.as_str().and_then(Role::parse);
                    if role.is_none() {
                        cx.problem(
                            &format!("{at}.{k}"),
                            format!(
                                "must name a role ({})",
                                Role::ALL.map(Role::name).join(", ")
                            ),
                        );
                    }
                    let k = if lower {
                        k.to_ascii_lowercase()
                    } else {
                        k.clone()
                    };
                    Some((k, role?))
                })
                .collect(),
            Some(_) => {
                cx.problem(&at, "must be a table of names to roles");
                Vec::new()
            }
        }
    };
    let groups = map("groups", false);
    let roles = map("roles", true);
    (groups, roles)
}
