//! What an Entra audit record states, read once when it is decoded: a directory role
//! granted or removed, a group membership change, the per-user MFA requirement removed,
//! security info deleted, a Conditional Access policy that required MFA weakened.

use super::{CaChange, DirectoryAudit, GroupChange, Modified, RoleChange, Target};
use crate::event::reason::{BadDocument, Reason};
use serde_json::Value;

/// A JSON value a modified property holds as text (`"\"Global Administrator\""`, `"[]"`):
/// decoded once; the text itself when it is not JSON.
pub fn decoded(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

/// Text of a decoded value: a string's content, else the JSON text.
fn decoded_text(text: &str) -> Option<String> {
    match decoded(text) {
        Value::String(s) => Some(s.trim().to_owned()).filter(|s| !s.is_empty()),
        Value::Null => None,
        Value::Array(a) if a.is_empty() => None,
        other => Some(other.to_string()),
    }
}

/// Whether an enabled Conditional Access policy (Graph's shape) requires MFA: a
/// `grantControls.builtInControls` entry `mfa` in any case, or an authentication strength.
fn requires_mfa(policy: &Value) -> bool {
    let enabled = policy
        .get("state")
        .and_then(Value::as_str)
        .is_some_and(|s| s.eq_ignore_ascii_case("enabled"));
    let grant = policy.get("grantControls");
    let mfa = grant
        .and_then(|g| g.get("builtInControls"))
        .and_then(Value::as_array)
        .is_some_and(|c| {
            c.iter()
                .any(|x| x.as_str().is_some_and(|x| x.eq_ignore_ascii_case("mfa")))
        });
    let strength = grant
        .and_then(|g| g.get("authenticationStrength"))
        .is_some_and(|s| !s.is_null());
    enabled && (mfa || strength)
}

impl DirectoryAudit {
    /// The activity is one of `names`: compared without case, a trailing `.` (the 2018
    /// schema's) and doubled blanks.
    pub fn activity_is(&self, names: &[&str]) -> bool {
        names.iter().any(|n| same_activity(&self.activity, n))
    }

    /// The first target that is a user.
    pub fn target_user(&self) -> Option<&Target> {
        self.targets.iter().find(|t| {
            t.kind
                .as_deref()
                .is_some_and(|k| k.eq_ignore_ascii_case("User"))
        })
    }

    /// A modified property of any target, by name without case.
    pub fn property(&self, name: &str) -> Option<&Modified> {
        self.targets
            .iter()
            .flat_map(|t| &t.modified)
            .find(|m| m.name.eq_ignore_ascii_case(name))
    }

    fn detail(&self, key: &str) -> Option<&str> {
        self.details
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }

    /// A directory role granted: `Add member to role`, `Add eligible member to role`, and
    /// PIM's completed grants (`... completed (permanent|timebound)`, `... (PIM
    /// activation)`); a *request* grants nothing, nor does a failed record.
    pub fn role_grant(&self) -> Option<RoleChange> {
        let a = normal(&self.activity).to_ascii_lowercase();
        let add =
            a.starts_with("add member to role") || a.starts_with("add eligible member to role");
        let pim = a.contains("pim");
        if !add
            || a.contains("request")
            || (pim && !a.contains("completed") && !a.contains("activation"))
        {
            return None;
        }
        self.role_change(a.starts_with("add eligible"))
    }

    /// A directory role removed (`Remove member from role`, `Remove eligible member from
    /// role`, PIM's completed removals).
    pub fn role_removal(&self) -> Option<RoleChange> {
        let a = normal(&self.activity).to_ascii_lowercase();
        let remove = a.starts_with("remove member from role")
            || a.starts_with("remove eligible member from role");
        if !remove || a.contains("request") {
            return None;
        }
        self.role_change(a.starts_with("remove eligible"))
    }

    fn role_change(&self, eligible: bool) -> Option<RoleChange> {
        if self.success == Some(false) {
            return None;
        }
        let value = |name: &str| {
            self.property(name)
                .and_then(|m| m.new.as_deref().or(m.old.as_deref()))
                .and_then(decoded_text)
        };
        let role_target = self.targets.iter().find(|t| {
            t.kind
                .as_deref()
                .is_some_and(|k| k.eq_ignore_ascii_case("Role"))
        });
        let template_id = value("Role.TemplateId")
            .or_else(|| value("TemplateId"))
            .or_else(|| self.detail("TemplateId").map(str::to_owned))
            .map(|t| t.to_ascii_lowercase());
        let member = self.targets.iter().find(|t| {
            t.kind.as_deref().is_some_and(|k| {
                k.eq_ignore_ascii_case("User") || k.eq_ignore_ascii_case("ServicePrincipal")
            })
        });
        Some(RoleChange {
            template_id,
            well_known: value("Role.WellKnownObjectName"),
            name: value("Role.DisplayName")
                .or_else(|| role_target.and_then(|t| t.display_name.clone())),
            eligible,
            member_id: member.and_then(|m| m.id.clone()),
            member_name: member.and_then(|m| m.upn.clone().or_else(|| m.display_name.clone())),
            member_is_user: member
                .and_then(|m| m.kind.as_deref())
                .is_some_and(|k| k.eq_ignore_ascii_case("User")),
        })
    }

    /// A group membership change: the group's display name and whether the member was
    /// added (`Add member to group`) or removed (`Remove member from group`).
    pub fn group_change(&self) -> Option<GroupChange> {
        let add = self.activity_is(&["Add member to group"]);
        if !add && !self.activity_is(&["Remove member from group"]) || self.success == Some(false) {
            return None;
        }
        let group = self
            .property("Group.DisplayName")
            .and_then(|m| m.new.as_deref().or(m.old.as_deref()))
            .and_then(decoded_text)
            .or_else(|| {
                self.targets
                    .iter()
                    .find(|t| {
                        t.kind
                            .as_deref()
                            .is_some_and(|k| k.eq_ignore_ascii_case("Group"))
                    })
                    .and_then(|t| t.display_name.clone())
            })?;
        let member = self.target_user();
        Some(GroupChange {
            group,
            added: add,
            member_id: member.and_then(|m| m.id.clone()),
            member_upn: member.and_then(|m| m.upn.clone()),
        })
    }

    /// The per-user MFA requirement removed: `Disable Strong Authentication`, or
    /// `StrongAuthenticationRequirement` going from a requirement to none on `Update user`.
    pub fn mfa_requirement_removed(&self) -> bool {
        if self.success == Some(false) {
            return false;
        }
        if self.activity_is(&["Disable Strong Authentication"]) {
            return true;
        }
        let Some(m) = self.property("StrongAuthenticationRequirement") else {
            return false;
        };
        let had = m.old.as_deref().and_then(decoded_text).is_some();
        let has = m.new.as_deref().and_then(decoded_text).is_some();
        had && !has
    }

    /// A per-user MFA requirement set: `StrongAuthenticationRequirement` going from none
    /// to a requirement on `Update user` (the state a later removal is judged against).
    pub fn mfa_requirement_set(&self) -> bool {
        if self.success == Some(false) {
            return false;
        }
        let Some(m) = self.property("StrongAuthenticationRequirement") else {
            return false;
        };
        let had = m.old.as_deref().and_then(decoded_text).is_some();
        let has = m.new.as_deref().and_then(decoded_text).is_some();
        !had && has
    }

    /// A user's or an admin's deletion of security info (authentication methods).
    pub fn security_info_deleted(&self) -> bool {
        self.success != Some(false)
            && self.activity_is(&["User deleted security info", "Admin deleted security info"])
    }

    /// A Conditional Access policy that was enabled and required MFA, deleted, disabled,
    /// set to report-only, or stripped of its MFA control. Only the Conditional Access
    /// service's own activities count (`Update/Delete conditional access policy`): the
    /// Core Directory `Update policy` twin of the same change is not a second one.
    /// `Err` when the policy's value is not JSON.
    pub fn ca_change(&self) -> Result<Option<CaChange>, BadDocument> {
        let delete = self.activity_is(&["Delete conditional access policy"]);
        if !delete && !self.activity_is(&["Update conditional access policy"]) {
            return Ok(None);
        }
        let Some(m) = self.property("ConditionalAccessPolicy") else {
            return Ok(None);
        };
        let parse = |v: &Option<String>| -> Result<Option<Value>, BadDocument> {
            match v.as_deref() {
                None => Ok(None),
                Some(t) => match serde_json::from_str::<Value>(t) {
                    Ok(v @ Value::Object(_)) => Ok(Some(v)),
                    _ => Err(BadDocument::new(
                        Reason::BadValue,
                        "`ConditionalAccessPolicy` holds no JSON policy object",
                    )),
                },
            }
        };
        let old = parse(&m.old)?;
        let new = if delete { None } else { parse(&m.new)? };
        let name = new
            .as_ref()
            .or(old.as_ref())
            .and_then(|p| p.get("displayName"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let before = old.as_ref().is_some_and(requires_mfa);
        let after = new.as_ref().is_some_and(requires_mfa);
        let state = new
            .as_ref()
            .and_then(|p| p.get("state"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let change = if delete {
            "deleted"
        } else if state.eq_ignore_ascii_case("disabled") {
            "disabled"
        } else if state.eq_ignore_ascii_case("enabledForReportingButNotEnforced") {
            "set to report-only"
        } else {
            "MFA control removed"
        };
        Ok(Some(CaChange {
            name,
            required_mfa_before: before,
            requires_mfa_after: after,
            change,
        }))
    }
}

/// Whether an activity name is `name` as [`normal`] compares them (trimmed, without a
/// trailing `.`, blanks folded, any ASCII case), without allocating: it is asked several
/// times of every audit record.
pub(super) fn same_activity(activity: &str, name: &str) -> bool {
    let mut a = activity.trim().trim_end_matches('.').split_whitespace();
    let mut n = name.split_whitespace();
    loop {
        match (a.next(), n.next()) {
            (None, None) => return true,
            (Some(x), Some(y)) if x.eq_ignore_ascii_case(y) => {}
            _ => return false,
        }
    }
}

/// An activity name as compared: trimmed, without a trailing `.`, blanks folded.
fn normal(activity: &str) -> String {
    activity
        .trim()
        .trim_end_matches('.')
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}
