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

#[cfg(test)]
mod tests {
    use tenantry_identity::Email;

    use super::*;

    /// A small deterministic generator (xorshift), so the addresses below are the same on
    /// every run.
    struct Draw(u64);

    impl Draw {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            usize::try_from(self.0 % n as u64).unwrap_or(0)
        }

        fn pick(&mut self, chars: &[u8]) -> char {
            char::from(chars[self.below(chars.len())])
        }
    }

    const ATEXT: &[u8] =
        b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+/=?^_`{|}~-";
    const LDH: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-";
    const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

    /// An address from the rule's grammar: a dot-atom, then labels, at the rule's edges
    /// (64-character local parts, 63-character labels) as often as in between.
    fn address(d: &mut Draw) -> String {
        let local_len = [1, 64, 1 + d.below(64)][d.below(3)];
        let mut local = String::new();
        while local.len() < local_len {
            let last = local.len() + 1 == local_len;
            if !local.is_empty() && !local.ends_with('.') && !last && d.below(6) == 0 {
                local.push('.');
            } else {
                local.push(d.pick(ATEXT));
            }
        }
        let mut labels = Vec::new();
        for _ in 0..2 + d.below(3) {
            let len = [1, 63, 1 + d.below(63)][d.below(3)];
            let label: String = (0..len)
                .map(|i| {
                    if i == 0 || i + 1 == len {
                        d.pick(ALNUM)
                    } else {
                        d.pick(LDH)
                    }
                })
                .collect();
            labels.push(label);
        }
        let mut domain = labels.join(".");
        domain.truncate(254 - local.len() - 1);
        let domain = domain.trim_end_matches(['.', '-']).to_owned();
        let mut address: Vec<char> = format!("{local}@{domain}").chars().collect();
        // A third of them get a character from outside the grammar somewhere.
        if d.below(3) == 0 {
            const NOISE: [char; 14] = [
                '?',
                ':',
                '[',
                ']',
                '"',
                '(',
                ',',
                '.',
                '-',
                '@',
                '\\',
                'ü',
                '\u{7b02e}',
                '\u{3000}',
            ];
            let at = d.below(address.len());
            address[at] = NOISE[d.below(NOISE.len())];
        }
        address.into_iter().collect()
    }

    /// Whatever address the API takes is one the mailer (lettre, with its own address
    /// rules) sends to: an address it refused would fail every attempt of its email.
    #[test]
    fn every_address_the_api_takes_can_be_mailed() {
        let mut d = Draw(0x5eed_2026_1201);
        let mut taken = 0;
        for _ in 0..20_000 {
            let raw = address(&mut d);
            let Ok(email) = Email::parse("email", &raw) else {
                continue;
            };
            taken += 1;
            verification_email(
                "Tenantry <no-reply@tenantry.test>",
                "Ada",
                email.as_str(),
                "x",
            )
            .unwrap_or_else(|e| panic!("{raw:?} was taken but cannot be mailed: {e}"));
        }
        assert!(
            taken > 10_000,
            "the generator should mostly make valid addresses: {taken}"
        );
    }

    /// The address a fuzzer registered with, which no email could be built for (its verification
    /// email then held up the worker's shutdown in its retries), is refused at the edge.
    #[test]
    fn an_address_the_mailer_refuses_is_refused_at_the_edge() {
        let raw = "xz%~@\u{7b02e}\u{115}\u{f9}?.\u{aa}\u{c5ebb}\u{144}k\u{bb}h.hm";
        assert!(verification_email("Tenantry <no-reply@tenantry.test>", "Ada", raw, "x").is_err());
        assert_eq!(
            Email::parse("email", raw).unwrap_err().code,
            "invalid_email"
        );
    }
}
