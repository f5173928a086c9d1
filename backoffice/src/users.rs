//! Back-office users, their roles, and Argon2 hashes of passwords and staff PINs.

use std::sync::LazyLock;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use proto::SiteId;
use ring::rand::{SecureRandom, SystemRandom};

use crate::limits::{PASSWORD_CHARS_MAX, PASSWORD_CHARS_MIN, PIN_DIGITS_MAX, PIN_DIGITS_MIN};

/// What a user may do. Each endpoint names the roles it admits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Canteen staff of one site: its pupils, cards and top-ups.
    Staff,
    /// The finance office: every account, adjustments, anomalies, the fleet.
    Finance,
    /// City IT: everything, including tariffs, services, staff and settings.
    Admin,
    /// An online payment provider: may only credit accounts with its payments.
    Payments,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Staff, Role::Finance, Role::Admin, Role::Payments];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Staff => "staff",
            Role::Finance => "finance",
            Role::Admin => "admin",
            Role::Payments => "payments",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str() == text)
    }
}

/// A back-office user. Staff belong to one site; the other roles to none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub role: Role,
    pub site: Option<SiteId>,
    /// Argon2id in PHC string form.
    pub password_hash: String,
    /// Disabled by city IT: signs in no more, keeps their name on what they did.
    pub disabled: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    #[error("user name must be 1 to 64 letters, digits, '.', '-' or '_'")]
    Name,
    #[error("password must be {PASSWORD_CHARS_MIN} to {PASSWORD_CHARS_MAX} characters")]
    Password,
    #[error("PIN must be {PIN_DIGITS_MIN} to {PIN_DIGITS_MAX} digits")]
    Pin,
    #[error("a staff user needs --site; finance, admin and payments users have none")]
    Site,
    #[error("hashing failed: {0}")]
    Hash(String),
}

impl User {
    /// A new user with `password` hashed; checks the name, the password and the site rule.
    pub fn new(
        name: &str,
        role: Role,
        site: Option<SiteId>,
        password: &str,
    ) -> Result<User, UserError> {
        if !is_user_name(name) {
            return Err(UserError::Name);
        }
        if !(PASSWORD_CHARS_MIN..=PASSWORD_CHARS_MAX).contains(&password.chars().count()) {
            return Err(UserError::Password);
        }
        if (role == Role::Staff) != site.is_some() {
            return Err(UserError::Site);
        }
        Ok(User {
            name: name.to_owned(),
            role,
            site,
            password_hash: hash_secret(password)?,
            disabled: false,
        })
    }

    pub fn verify_password(&self, password: &str) -> bool {
        password.chars().count() <= PASSWORD_CHARS_MAX
            && verify_secret(&self.password_hash, password)
    }
}

/// The Argon2 hash of a staff PIN, as kiosks receive it in snapshots.
pub fn hash_pin(pin: &str) -> Result<String, UserError> {
    if !(PIN_DIGITS_MIN..=PIN_DIGITS_MAX).contains(&pin.len())
        || !pin.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(UserError::Pin);
    }
    hash_secret(pin)
}

/// Argon2id with the crate's default (OWASP-recommended) parameters and a random salt.
/// Whether `name` can be a user's: 1 to [`proto::limits::ID_CHARS_MAX`] letters, digits, `.`,
/// `-` or `_`.
pub fn is_user_name(name: &str) -> bool {
    (1..=proto::limits::ID_CHARS_MAX).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

/// Checks `password` against a hash no password matches, in the time a real user's check
/// takes: an unknown name answers as late as a known one, so names cannot be told by timing.
pub fn verify_nobody(password: &str) {
    if password.chars().count() > PASSWORD_CHARS_MAX {
        return;
    }
    static NOBODY: LazyLock<Option<String>> = LazyLock::new(|| {
        crate::sign_in::random_token()
            .ok()
            .and_then(|secret| hash_secret(&secret).ok())
    });
    if let Some(hash) = NOBODY.as_deref() {
        let _ = verify_secret(hash, password);
    }
}

fn hash_secret(secret: &str) -> Result<String, UserError> {
    let mut salt = [0_u8; 16];
    SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| UserError::Hash("the system random source is unavailable".to_owned()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|error| UserError::Hash(error.to_string()))?;
    Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|error| UserError::Hash(error.to_string()))
}

fn verify_secret(hash: &str, secret: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|hash| {
        Argon2::default()
            .verify_password(secret.as_bytes(), &hash)
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use proto::SiteId;

    use super::{Role, User, UserError, hash_pin, verify_secret};

    fn check(
        name: &str,
        role: Role,
        site: Option<&str>,
        password: &str,
        expected: Result<(), UserError>,
    ) {
        let site = site.map(|site| SiteId::parse(site).unwrap());
        let made = User::new(name, role, site, password);
        assert_eq!(
            made.as_ref().map(|_| ()).map_err(Clone::clone),
            expected,
            "{name}"
        );
        if let Ok(user) = made {
            assert!(user.verify_password(password));
            assert!(!user.verify_password("not the password"));
            assert!(user.password_hash.starts_with("$argon2id$"));
        }
    }

    #[test]
    fn users() {
        check(
            "martin",
            Role::Staff,
            Some("jaures"),
            "correct horse battery",
            Ok(()),
        );
        check(
            "finance.1",
            Role::Finance,
            None,
            "correct horse battery",
            Ok(()),
        );
        check(
            "martin",
            Role::Staff,
            None,
            "correct horse battery",
            Err(UserError::Site),
        );
        check(
            "admin",
            Role::Admin,
            Some("jaures"),
            "correct horse battery",
            Err(UserError::Site),
        );
        check(
            "admin",
            Role::Admin,
            None,
            "short",
            Err(UserError::Password),
        );
        check(
            "",
            Role::Admin,
            None,
            "correct horse battery",
            Err(UserError::Name),
        );
        check(
            "a b",
            Role::Admin,
            None,
            "correct horse battery",
            Err(UserError::Name),
        );
        check(
            "x'; DROP TABLE users;--",
            Role::Admin,
            None,
            "correct horse battery",
            Err(UserError::Name),
        );
    }

    #[test]
    fn pins() {
        let hash = hash_pin("2468").unwrap();
        assert!(verify_secret(&hash, "2468"));
        assert!(!verify_secret(&hash, "2469"));
        for bad in ["123", "123456789", "12a4", ""] {
            assert_eq!(hash_pin(bad), Err(UserError::Pin), "{bad}");
        }
    }
}
