//! Outgoing email through lettre: an SMTP relay when one is configured, otherwise `.eml`
//! files under `data_dir/mail` (the embedded default, readable with any mail client).

use std::path::Path;

use lettre::message::{Mailbox, header::ContentType};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;
use tenantry_kernel::text;

use crate::Settings;

/// Sends email.
pub enum Mailer {
    /// Through an SMTP relay.
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// Into `.eml` files.
    Files(AsyncFileTransport<Tokio1Executor>),
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mailer::Smtp(_) => "Mailer::Smtp",
            Mailer::Files(_) => "Mailer::Files",
        })
    }
}

/// Email could not be built or sent.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The SMTP URL or an address is malformed.
    #[error("mail configuration: {0}")]
    Config(String),
    /// The relay refused or could not be reached; worth retrying.
    #[error("sending failed: {0}")]
    Send(String),
}

impl Mailer {
    /// The mailer the settings ask for.
    pub fn from_settings(settings: &Settings) -> Result<Self, MailError> {
        match &settings.smtp {
            Some(smtp) => AsyncSmtpTransport::<Tokio1Executor>::from_url(smtp.url.expose_secret())
                .map(|b| Mailer::Smtp(b.build()))
                .map_err(|e| MailError::Config(e.to_string())),
            None => Self::files(&settings.data_dir.join("mail")),
        }
    }

    /// A mailer writing `.eml` files into `dir`.
    pub fn files(dir: &Path) -> Result<Self, MailError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| MailError::Config(format!("{}: {e}", dir.display())))?;
        Ok(Mailer::Files(AsyncFileTransport::new(dir)))
    }

    /// Sends one message.
    pub async fn send(&self, message: Message) -> Result<(), MailError> {
        match self {
            Mailer::Smtp(t) => t
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| MailError::Send(e.to_string())),
            Mailer::Files(t) => t
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| MailError::Send(e.to_string())),
        }
    }
}

/// The email that asks a new user to confirm their address. (The name is the account's own,
/// but whoever signs up chooses it, for any address: it is defanged like every text of users
/// in emails.)
pub fn verification_email(
    from: &str,
    to_name: &str,
    to_email: &str,
    link: &str,
) -> Result<Message, MailError> {
    let to_name = &text::defang(to_name);
    plain_email(
        from,
        (Some(to_name), to_email),
        "Confirm your email address",
        format!(
            "Hello {to_name},\n\nplease confirm your email address by opening this link:\n\n{link}\n\n\
             The link is valid for 24 hours and works once. If you did not create an account, \
             ignore this email.\n"
        ),
    )
}

/// The password-reset email, with its single-use link.
pub fn password_reset_email(
    from: &str,
    to_name: &str,
    to_email: &str,
    link: &str,
) -> Result<Message, MailError> {
    let to_name = &text::defang(to_name);
    plain_email(
        from,
        (Some(to_name), to_email),
        "Reset your password",
        format!(
            "Hello {to_name},\n\nsomeone asked to reset the password of your account. To choose a \
             new one, open this link:\n\n{link}\n\nThe link is valid for one hour and works \
             once; using it signs you out everywhere. If you did not ask, ignore this email: \
             your password stays as it is.\n"
        ),
    )
}

/// The invitation email, with its single-use link.
///
/// Everything in it that people wrote — the inviter's and the tenant's names, the message —
/// is sent from this service's own address, so it is disarmed: anything that reads as a
/// link is defanged ([`text::defang`]; names refuse links at input, this covers older
/// ones), and the message is quoted line by line as the inviter's words.
pub fn invitation_email(
    from: &str,
    mail: &tenantry_identity::InvitationMail,
    link: &str,
) -> Result<Message, MailError> {
    let inviter = text::defang(mail.inviter_name.as_deref().unwrap_or("Someone"));
    let tenant = text::defang(&mail.tenant_name);
    let note = mail
        .message
        .as_deref()
        .map(|m| {
            let quoted: String = m
                .lines()
                .map(|line| format!("> {}\n", text::defang(line)))
                .collect();
            format!(
                "\n{inviter} added a message. These are their words, not ours; links in them \
                 are disabled:\n\n{quoted}"
            )
        })
        .unwrap_or_default();
    plain_email(
        from,
        (None, &mail.to),
        &format!("{inviter} invited you to {tenant}"),
        format!(
            "Hello,\n\n{inviter} invited you to join {tenant} as {role}.\n{note}\nTo accept, open \
             this link:\n\n{link}\n\nThe invitation is valid until {expires} (UTC) and works \
             once. If you do not know {tenant}, ignore this email.\n",
            role = mail.role.as_str(),
            expires = mail.expires_at.format("%Y-%m-%d %H:%M"),
        ),
    )
}

/// A plain-text email from `from` to `(name, address)`.
fn plain_email(
    from: &str,
    to: (Option<&str>, &str),
    subject: &str,
    body: String,
) -> Result<Message, MailError> {
    let bad = |e: lettre::address::AddressError| MailError::Config(e.to_string());
    let from: Mailbox = from.parse().map_err(bad)?;
    let to = Mailbox::new(to.0.map(str::to_owned), to.1.parse().map_err(bad)?);
    Message::builder()
        .from(from)
        .to(to)
        .subject(subject)
        .header(ContentType::TEXT_PLAIN)
        .body(body)
        .map_err(|e| MailError::Config(e.to_string()))
}
