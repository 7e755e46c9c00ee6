//! SeaORM entities for the tables identity owns.

pub mod api_key;
pub mod email_verification;
pub mod invitation;
pub mod invitation_email;
pub mod password_reset;
pub mod refresh_token;
pub mod session;
pub mod user;
