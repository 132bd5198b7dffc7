//! Tenant ids as sent in `X-Scope-OrgID`: roughly Loki's rules, and one tenant per request.

use super::error::{DecodeError, TenantProblem, clip};

/// The longest tenant id accepted, in characters.
const MAX_TENANT_CHARS: usize = 150;

/// Accepts 1 to 150 characters of `[a-zA-Z0-9!._*'()-]`, except `.` and `..`. Multi-tenant
/// ids (`a|b`) are refused with their own message. Errors are 400 and name the id.
pub fn validate_tenant(id: &str) -> Result<(), DecodeError> {
    match tenant_problem(id) {
        None => Ok(()),
        Some(problem) => Err(DecodeError::Tenant {
            id: clip(id),
            problem,
        }),
    }
}

fn tenant_problem(id: &str) -> Option<TenantProblem> {
    let chars = id.chars().count();
    if id.is_empty() {
        Some(TenantProblem::Empty)
    } else if id.contains('|') {
        Some(TenantProblem::MultiTenant)
    } else if chars > MAX_TENANT_CHARS {
        Some(TenantProblem::TooLong(chars))
    } else if id == "." || id == ".." {
        Some(TenantProblem::Reserved)
    } else {
        id.chars()
            .find(|&c| !allowed(c))
            .map(TenantProblem::InvalidChar)
    }
}

fn allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!._*'()-".contains(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_ids_pass() {
        for id in [
            "a",
            "tenant-1",
            "Team_A.prod",
            "x!*'()",
            "...",
            &"a".repeat(150),
        ] {
            assert!(validate_tenant(id).is_ok(), "{id}");
        }
    }

    #[test]
    fn invalid_ids_are_400_and_named() {
        let long = "a".repeat(151);
        let cases = [
            ("", r#"invalid tenant id "": it is empty"#),
            (".", r#"invalid tenant id ".": "." and ".." are reserved"#),
            ("..", r#"invalid tenant id "..": "." and ".." are reserved"#),
            (
                "a|b",
                r#"invalid tenant id "a|b": several tenants joined with '|' are not supported"#,
            ),
            (
                "a/b",
                r#"invalid tenant id "a/b": it contains '/' (allowed: a-z A-Z 0-9 ! . _ * ' ( ) -)"#,
            ),
            ("a b", "it contains ' '"),
            ("é", "it contains 'é'"),
            (&long, "it is 151 characters, over the limit of 150"),
        ];
        for (id, want) in cases {
            let err = validate_tenant(id).unwrap_err();
            assert_eq!(err.status(), 400);
            assert!(
                err.to_string().contains(want),
                "{err} does not contain {want}"
            );
        }
    }
}
