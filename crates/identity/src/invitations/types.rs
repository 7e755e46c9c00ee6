//! What an invitation is made of.

use chrono::{DateTime, Utc};
use tenantry_kernel::{FieldError, LocationId, Role, TenantId, UserId, ValidationErrors};
use uuid::Uuid;

use crate::entity::invitation;
use crate::{Email, TokenPair};

use super::*;

/// Where an invitation stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvitationStatus {
    /// Waiting to be accepted.
    Pending,
    /// Accepted; the invitee is a member.
    Accepted,
    /// Not accepted in time.
    Expired,
    /// Withdrawn by the tenant.
    Revoked,
}

impl InvitationStatus {
    /// The name clients see.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Accepted => "accepted",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
        }
    }

    /// Parses a status name, as the list filter takes it.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Accepted, Self::Expired, Self::Revoked]
            .into_iter()
            .find(|v| v.as_str() == s)
    }

    /// The status a row shows at `now`: a pending one past its expiry is expired.
    pub(crate) fn of(row: &invitation::Model, now: DateTime<Utc>) -> Self {
        match row.status.as_str() {
            "accepted" => Self::Accepted,
            "revoked" => Self::Revoked,
            "pending" if row.expires_at > now => Self::Pending,
            _ => Self::Expired,
        }
    }
}

/// A parsed invite request.
#[derive(Clone, Debug)]
pub struct NewInvitations {
    /// The addresses, normalised, without duplicates.
    pub emails: Vec<Email>,
    /// The role each invitee will hold.
    pub role: Role,
    /// A note from the inviter, shown in the email.
    pub message: Option<String>,
    /// The location the invitees will work at, as its members.
    pub location: Option<LocationId>,
}

impl NewInvitations {
    /// Parses every field, reporting all invalid ones at once; addresses are named by index
    /// (`emails[3]`).
    pub fn parse(
        emails: &[String],
        role: &str,
        message: Option<&str>,
        location: Option<Uuid>,
    ) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        if emails.is_empty() || emails.len() > MAX_BATCH {
            errors.0.push(FieldError::new(
                "emails",
                "out_of_range",
                format!("between 1 and {MAX_BATCH} addresses"),
            ));
        }
        let mut parsed: Vec<Email> = Vec::with_capacity(emails.len());
        for (i, raw) in emails.iter().enumerate() {
            let field = format!("emails[{i}]");
            if let Some(email) = errors.check(Email::parse(&field, raw)) {
                if parsed.contains(&email) {
                    errors.0.push(FieldError::new(
                        &field,
                        "duplicate",
                        "this address appears earlier in the list",
                    ));
                } else {
                    parsed.push(email);
                }
            }
        }
        let role = errors.check(Role::parse_field("role", role));
        let message = message
            .and_then(|m| errors.check(MESSAGE.optional("message", m)))
            .flatten();
        errors.into_result()?;
        Ok(Self {
            emails: parsed,
            role: role.unwrap_or(Role::Member),
            message,
            location: location.map(LocationId),
        })
    }
}

/// The delivery state of an invitation's latest email.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmailDelivery {
    /// `pending`, `sent`, `failed` or `cancelled`.
    pub status: String,
    /// Attempts made so far.
    pub attempts: i32,
    /// When the last attempt was made.
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// When the next attempt is due, while pending.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// When the mail server accepted it.
    pub sent_at: Option<DateTime<Utc>>,
}

/// An invitation as the tenant sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invitation {
    /// Its id.
    pub id: Uuid,
    /// The invitee's address.
    pub email: String,
    /// The role the invitee will hold.
    pub role: Role,
    /// The inviter's note.
    pub message: Option<String>,
    /// Where it stands now.
    pub status: InvitationStatus,
    /// Who invited.
    pub invited_by: Option<UserId>,
    /// The location the invitee will join.
    pub location_id: Option<LocationId>,
    /// When it stops being acceptable.
    pub expires_at: DateTime<Utc>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was accepted.
    pub accepted_at: Option<DateTime<Utc>>,
    /// When it was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Its latest email's delivery.
    pub email_delivery: Option<EmailDelivery>,
}

/// Why an address of an invite call got no invitation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SkipReason {
    /// The address already belongs to a member.
    AlreadyMember,
    /// A pending invitation for the address exists.
    AlreadyInvited,
}

impl SkipReason {
    /// Stable code.
    #[must_use]
    pub fn code(self) -> &'static str {
        match self {
            Self::AlreadyMember => "already_member",
            Self::AlreadyInvited => "already_invited",
        }
    }
}

/// What an invite call did.
#[derive(Clone, Debug)]
pub struct InviteOutcome {
    /// The invitations created.
    pub created: Vec<Invitation>,
    /// The addresses skipped, with the reason.
    pub skipped: Vec<(String, SkipReason)>,
}

/// What the holder of an invitation token may learn before accepting.
#[derive(Clone, Debug)]
pub struct InvitationPreview {
    /// The tenant's (display) name.
    pub tenant_name: String,
    /// The invited address.
    pub email: String,
    /// The role offered.
    pub role: Role,
    /// Who invited, by name.
    pub inviter_name: Option<String>,
    /// When the invitation expires.
    pub expires_at: DateTime<Utc>,
    /// Whether an account uses the address already (then accepting adds a membership and
    /// the invitee signs in with their own password).
    pub account_exists: bool,
}

/// The outcome of accepting an invitation.
#[derive(Clone, Debug)]
pub struct Accepted {
    /// The member.
    pub user_id: UserId,
    /// The tenant joined.
    pub tenant_id: TenantId,
    /// The role held there.
    pub role: Role,
    /// Tokens for a new account's first session; `None` when an existing account joined
    /// (its owner signs in with their password).
    pub tokens: Option<TokenPair>,
}

/// One invitation email ready to send; the raw token exists only here and in the email.
#[derive(Clone)]
pub struct InvitationMail {
    /// The email record.
    pub email_id: Uuid,
    /// Which attempt this is, from 1.
    pub attempt: i32,
    /// The recipient.
    pub to: String,
    /// The tenant's (display) name.
    pub tenant_name: String,
    /// The inviter's name.
    pub inviter_name: Option<String>,
    /// The role offered.
    pub role: Role,
    /// The inviter's note.
    pub message: Option<String>,
    /// The token for the link.
    pub token: String,
    /// When the invitation expires.
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for InvitationMail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InvitationMail")
            .field("email_id", &self.email_id)
            .field("attempt", &self.attempt)
            .finish_non_exhaustive()
    }
}

/// What the daily invitation cleanup did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InvitationCleanup {
    /// Pending invitations past their expiry, marked expired.
    pub expired: u64,
    /// Pending emails of invitations no longer pending, cancelled.
    pub emails_cancelled: u64,
    /// Invitations expired or revoked for 30 days, hidden.
    pub soft_deleted: u64,
    /// Invitations hidden for 60 days, deleted with their emails.
    pub hard_deleted: u64,
    /// Failed or cancelled email records older than 30 days, deleted.
    pub email_records_deleted: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invite_input_names_each_bad_address() {
        let emails = vec![
            "ada@example.com".to_owned(),
            "not-an-address".to_owned(),
            " ADA@example.com".to_owned(),
        ];
        let err =
            NewInvitations::parse(&emails, "wizard", Some(&"x".repeat(1001)), None).unwrap_err();
        let fields: Vec<_> = err.0.iter().map(|e| (e.field.as_str(), e.code)).collect();
        assert_eq!(
            fields,
            [
                ("emails[1]", "invalid_email"),
                ("emails[2]", "duplicate"),
                ("role", "invalid_role"),
                ("message", "too_long"),
            ]
        );
    }

    #[test]
    fn invite_batches_are_bounded() {
        let many: Vec<String> = (0..=MAX_BATCH)
            .map(|i| format!("u{i}@example.com"))
            .collect();
        assert!(NewInvitations::parse(&many, "member", None, None).is_err());
        assert!(NewInvitations::parse(&[], "member", None, None).is_err());
        let ok = NewInvitations::parse(&many[..MAX_BATCH], "admin", Some("  "), None).unwrap();
        assert_eq!(ok.emails.len(), MAX_BATCH);
        assert_eq!(ok.role, Role::Admin);
        assert_eq!(ok.message, None);
    }
}
