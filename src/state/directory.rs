//! Directory facts held per user from Entra audit records: the directory roles a user
//! holds or is eligible for, and the per-user MFA requirement. Which roles are privileged
//! is the policy's business (its lists); state keeps every role as the record names it.

use super::tenant::set_text;
use super::TenantState;

/// Most directory roles (held and eligible, each) kept for one user. Entra has some 130
/// built-in roles; a record that would take a user past the bound is refused as a
/// `state_limit` dead letter (see [`TenantState::directory_role_room`]), never dropped.
pub const MAX_DIRECTORY_ROLES_PER_USER: usize = 256;

/// A directory role granted or removed.
#[derive(Debug, Clone, Copy)]
pub struct DirectoryRoleChange<'a> {
    /// The role as `audit.role_granted` names it.
    pub role: &'a str,
    /// An eligible assignment (PIM), not an active one.
    pub eligible: bool,
    /// Granted (else removed).
    pub granted: bool,
}

impl TenantState {
    /// Applies a directory role granted to or removed from a user. Roles compare
    /// without case; a removal of a role not held changes nothing.
    pub fn apply_directory_role(
        &mut self,
        user_id: &str,
        upn: Option<&str>,
        change: DirectoryRoleChange<'_>,
    ) {
        let role = change.role.trim();
        if role.is_empty() {
            return;
        }
        let u = self.user_mut(user_id);
        set_text(&mut u.upn, upn);
        let roles = if change.eligible {
            &mut u.eligible_roles
        } else {
            &mut u.directory_roles
        };
        let at = roles.iter().position(|r| r.eq_ignore_ascii_case(role));
        match (change.granted, at) {
            (true, None) if roles.len() < MAX_DIRECTORY_ROLES_PER_USER => {
                roles.push(role.to_owned())
            }
            (false, Some(i)) => {
                roles.remove(i);
            }
            _ => {}
        }
    }

    /// Whether granting `role` to `user_id` keeps the user within
    /// [`MAX_DIRECTORY_ROLES_PER_USER`] (a role already held always does).
    pub fn directory_role_room(&self, user_id: &str, role: &str, eligible: bool) -> bool {
        let Some(u) = self.user(user_id) else {
            return true;
        };
        let roles = if eligible {
            &u.eligible_roles
        } else {
            &u.directory_roles
        };
        roles.len() < MAX_DIRECTORY_ROLES_PER_USER
            || roles.iter().any(|r| r.eq_ignore_ascii_case(role.trim()))
    }

    /// Records the per-user MFA requirement set (`true`) or removed (`false`).
    pub fn apply_per_user_mfa(&mut self, user_id: &str, upn: Option<&str>, required: bool) {
        let u = self.user_mut(user_id);
        set_text(&mut u.upn, upn);
        u.per_user_mfa = Some(required);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(role: &str, eligible: bool, granted: bool) -> DirectoryRoleChange<'_> {
        DirectoryRoleChange {
            role,
            eligible,
            granted,
        }
    }

    #[test]
    fn roles_are_granted_removed_and_bounded() {
        let mut t = TenantState::default();
        let ga = "62e90394-69f5-4237-9190-012177145e10";
        t.apply_directory_role("u1", Some("a@x"), change(ga, false, true));
        t.apply_directory_role("u1", None, change(ga, false, true));
        t.apply_directory_role("u1", None, change("Security Administrator", true, true));
        let u = t.user("u1").unwrap();
        assert_eq!(u.directory_roles, [ga]);
        assert_eq!(u.eligible_roles, ["Security Administrator"]);
        assert_eq!(u.upn.as_deref(), Some("a@x"));
        t.apply_directory_role("U1", None, change(&ga.to_uppercase(), false, false));
        t.apply_directory_role("u1", None, change("security administrator", true, false));
        let u = t.user("u1").unwrap();
        assert!(u.directory_roles.is_empty() && u.eligible_roles.is_empty());

        for i in 0..MAX_DIRECTORY_ROLES_PER_USER {
            t.apply_directory_role("u2", None, change(&format!("r{i}"), false, true));
        }
        assert!(!t.directory_role_room("u2", "one more", false));
        assert!(t.directory_role_room("u2", "R7", false));
        assert!(t.directory_role_room("u2", "one more", true));
        assert!(t.directory_role_room("nobody", "r", false));
    }

    #[test]
    fn per_user_mfa_follows_the_latest_change() {
        let mut t = TenantState::default();
        assert_eq!(t.user("u1").map(|u| u.per_user_mfa), None);
        t.apply_per_user_mfa("u1", None, true);
        assert_eq!(t.user("u1").unwrap().per_user_mfa, Some(true));
        t.apply_per_user_mfa("u1", None, false);
        assert_eq!(t.user("u1").unwrap().per_user_mfa, Some(false));
    }
}
