//! SeaORM entities for the tables identity owns.

pub mod api_key;
pub mod email_verification;
pub mod invitation;
pub mod invitation_email;
pub mod mfa_backup_code;
pub mod mfa_challenge;
pub mod password_reset;
pub mod refresh_token;
pub mod session;
pub mod totp_factor;
pub mod user;
