//! Free text from clients: which characters a field takes, how long it may be, and the
//! pattern that tells clients generated from the API document the same.
//!
//! Every text field follows one [`TextRule`]:
//! - at most `max` characters, counted as sent;
//! - no control characters (a multi-line rule takes line feeds, carriage returns and tabs);
//! - leading and trailing whitespace trimmed away, and a required field not blank;
//! - for names shown to other people (in emails, on pages), nothing that reads as a link or
//!   an address: mail clients turn `evil.example/login` into a link sent from Tenantry's own
//!   address.
//!
//! The HTTP edge also refuses control characters (NUL first of all) in every string of every
//! request, so text a rule was never applied to cannot carry them to the database either.

use std::sync::LazyLock;

use regex::Regex;

use crate::FieldError;

/// Whether `c` may appear in no text from a client: the C0 controls but tab, line feed and
/// carriage return, DEL, and the C1 controls.
#[must_use]
pub fn is_forbidden_control(c: char) -> bool {
    c.is_control() && !matches!(c, '\t' | '\n' | '\r')
}

/// A host name as a pattern: two or more dot-separated labels of letters, digits and inner
/// hyphens, 1 to 63 characters each ([`is_host_name`] says the same). A macro, so that
/// `concat!` builds patterns from it.
#[macro_export]
macro_rules! host_name_pattern {
    () => {
        "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+"
    };
}

/// Whether `s` is a host name of two or more labels (letters, digits and inner hyphens, 1 to
/// 63 characters each), at most 253 characters: what mail is delivered to, and what an email
/// domain is compared with.
#[must_use]
pub fn is_host_name(s: &str) -> bool {
    s.len() <= 253
        && s.contains('.')
        && s.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// The whitespace `str::trim` removes and the edge lets through (tab, line breaks and the
/// Unicode spaces), as a pattern character class: for patterns of values taken with whitespace
/// around them. A macro, so that `concat!` builds patterns from it.
#[macro_export]
macro_rules! space_class {
    () => {
        "[\\t\\n\\r \\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
    };
}

/// A character class of what is neither whitespace nor a control, nor one of `$except`.
#[macro_export]
macro_rules! visible_class {
    ($except:literal) => {
        concat!(
            "[^\\u0000-\\u0020\\u007f-\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000",
            $except,
            "]"
        )
    };
}

/// A character a multi-line text takes (anything but the forbidden controls).
const LINES_CHAR: &str = r"[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]";
/// A character a single line takes (no control character at all).
const LINE_CHAR: &str = r"[^\u0000-\u001f\u007f-\u009f]";
/// A character that is neither a control nor whitespace as `str::trim` counts it (Unicode
/// White_Space), so text holding one is not blank.
const VISIBLE_CHAR: &str = visible_class!("");
/// What reads as a link or an address: a scheme (`https://`), an `@`, a dot between a
/// letter or digit and two letters (`evil.example`, also with the full-width and ideographic
/// dots mail clients accept), or a dotted IPv4 address. `J.R.R. Tolkien` and `Acme Inc.` pass.
const LINKISH: &str = r"[A-Za-z][A-Za-z0-9+.-]*://|@|[A-Za-z0-9\u00c0-\uffff-][.\u3002\uff0e\uff61][A-Za-z\u00c0-\uffff]{2}|[0-9][.][0-9]+[.][0-9]+[.][0-9]";

static LINKS: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(LINKISH).ok());

/// Whether `text` holds something that reads as a link or an address.
#[must_use]
pub fn reads_as_link(text: &str) -> bool {
    LINKS.as_ref().is_none_or(|re| re.is_match(text))
}

/// `text` with everything that reads as a link or an address disarmed, for text of users in
/// emails: `https://evil.example` becomes `https[:]//evil[.]example`, `ada@evil.example`
/// `ada[@]evil[.]example` — readable, but no mail client makes a link of it.
#[must_use]
pub fn defang(text: &str) -> String {
    let Some(re) = LINKS.as_ref() else {
        return text.replace(['.', '@', ':'], "_");
    };
    re.replace_all(text, |found: &regex::Captures<'_>| {
        let mut out = String::new();
        for c in found[0].chars() {
            match c {
                '.' | '\u{3002}' | '\u{ff0e}' | '\u{ff61}' => out.push_str("[.]"),
                '@' => out.push_str("[@]"),
                ':' => out.push_str("[:]"),
                other => out.push(other),
            }
        }
        out
    })
    .into_owned()
}

/// What a free-text field takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TextRule {
    /// Characters at most, counted as sent.
    pub max: usize,
    /// Whether line breaks and tabs are allowed.
    pub multiline: bool,
    /// Whether link- or address-like text is allowed.
    pub links: bool,
}

/// A name shown to other people — a person's, a tenant's, a brand's: one line of 1 to 100
/// characters, nothing that reads as a link.
pub const PERSON_OR_ORG_NAME: TextRule = TextRule::line(100).without_links();
/// A label people read in the product — a location's, a role's, a key's name: one line of 1
/// to 100 characters.
pub const LABEL: TextRule = TextRule::line(100);

impl TextRule {
    /// One line of at most `max` characters.
    #[must_use]
    pub const fn line(max: usize) -> Self {
        Self {
            max,
            multiline: false,
            links: true,
        }
    }

    /// Text of at most `max` characters that may span lines.
    #[must_use]
    pub const fn lines(max: usize) -> Self {
        Self {
            max,
            multiline: true,
            links: true,
        }
    }

    /// The same rule, refusing link- and address-like text.
    #[must_use]
    pub const fn without_links(self) -> Self {
        Self {
            links: false,
            ..self
        }
    }

    /// `raw` as the `field` of a request, trimmed; blank text is refused.
    pub fn required(self, field: &str, raw: &str) -> Result<String, FieldError> {
        self.optional(field, raw)?
            .ok_or_else(|| FieldError::new(field, "required", "must not be empty"))
    }

    /// `raw` as the `field` of a request, trimmed; blank text is `None`.
    pub fn optional(self, field: &str, raw: &str) -> Result<Option<String>, FieldError> {
        if raw.chars().count() > self.max {
            return Err(FieldError::new(
                field,
                "too_long",
                format!("at most {} characters", self.max),
            ));
        }
        let allowed = |c: char| {
            if self.multiline {
                !is_forbidden_control(c)
            } else {
                !c.is_control()
            }
        };
        if !raw.chars().all(allowed) {
            return Err(FieldError::new(
                field,
                "invalid_characters",
                if self.multiline {
                    "control characters other than line breaks and tabs are not allowed"
                } else {
                    "one line: line breaks, tabs and other control characters are not allowed"
                },
            ));
        }
        let text = raw.trim();
        if text.is_empty() {
            return Ok(None);
        }
        if !self.links && reads_as_link(text) {
            return Err(FieldError::new(
                field,
                "links_not_allowed",
                "links, addresses and domain names are not allowed here",
            ));
        }
        Ok(Some(text.to_owned()))
    }

    /// The ECMA-262 pattern a value of a required field matches exactly when
    /// [`required`](Self::required) takes it (lengths aside: `maxLength` says those).
    #[must_use]
    pub fn required_pattern(self) -> String {
        let c = self.char_class();
        format!("^{}{c}*{VISIBLE_CHAR}{c}*$", self.no_links_prefix())
    }

    /// The pattern a value of an optional field matches exactly when
    /// [`optional`](Self::optional) takes it.
    #[must_use]
    pub fn optional_pattern(self) -> String {
        format!("^{}{}*$", self.no_links_prefix(), self.char_class())
    }

    fn char_class(self) -> &'static str {
        if self.multiline {
            LINES_CHAR
        } else {
            LINE_CHAR
        }
    }

    fn no_links_prefix(self) -> String {
        if self.links {
            String::new()
        } else {
            format!(r"(?![\s\S]*(?:{LINKISH}))")
        }
    }
}

/// The pattern a string matches when it carries none of the control characters the HTTP
/// edge refuses: for strings no other rule describes (passwords, tokens, search terms).
#[must_use]
pub fn plain_pattern() -> String {
    format!("^{LINES_CHAR}*$")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(r: Result<Option<String>, FieldError>) -> &'static str {
        r.err().map_or("ok", |e| e.code)
    }

    #[test]
    fn a_line_is_trimmed_bounded_as_sent_and_free_of_controls() {
        let rule = TextRule::line(5);
        assert_eq!(rule.required("f", "  ab ").unwrap(), "ab");
        assert_eq!(code(rule.optional("f", "abcdef")), "too_long");
        // Counted as sent: trimming does not make room.
        assert_eq!(code(rule.optional("f", "  abcd")), "too_long");
        for bad in ["a\u{0}b", "a\nb", "a\tb", "a\u{7f}", "a\u{85}"] {
            assert_eq!(
                code(rule.optional("f", bad)),
                "invalid_characters",
                "{bad:?}"
            );
        }
        assert_eq!(rule.optional("f", " \u{3000} ").unwrap(), None);
        assert_eq!(rule.required("f", " ").unwrap_err().code, "required");
    }

    #[test]
    fn several_lines_take_breaks_and_tabs_but_no_other_control() {
        let rule = TextRule::lines(50);
        assert_eq!(
            rule.required("m", " Hi,\r\n\tsee you\n").unwrap(),
            "Hi,\r\n\tsee you"
        );
        assert_eq!(code(rule.optional("m", "a\u{0}")), "invalid_characters");
        assert_eq!(
            code(rule.optional("m", "a\u{1b}[31m")),
            "invalid_characters"
        );
    }

    #[test]
    fn defanged_text_reads_the_same_and_links_nothing() {
        assert_eq!(
            defang("Click https://evil.example/login, or mail ada@evil.example."),
            "Click https[:]//evil[.]example/login, or mail ada[@]evil[.]example."
        );
        assert_eq!(
            defang("J.R.R. Tolkien at 10.0.0.1"),
            "J.R.R. Tolkien at 10[.]0[.]0[.]1"
        );
        assert_eq!(defang("www.evil.example"), "www[.]evil[.]example");
        assert_eq!(defang("evil\u{3002}example"), "evil[.]example");
        assert_eq!(defang("javascript://x"), "javascript[:]//x");
    }

    #[test]
    fn names_refuse_links_and_addresses_but_not_initials() {
        let rule = PERSON_OR_ORG_NAME;
        for bad in [
            "Ada https://evil.example/login",
            "evil.example/login",
            "mail ada@evil.example",
            "EVIL.EXAMPLE",
            "evil\u{3002}example",
            "10.0.0.1",
            "javascript://x",
        ] {
            assert_eq!(
                code(rule.optional("name", bad)),
                "links_not_allowed",
                "{bad}"
            );
        }
        for good in [
            "J.R.R. Tolkien",
            "Acme Inc.",
            "Ph.D. Ada",
            "St. Gallen",
            "O'Brien & Co",
        ] {
            assert_eq!(code(rule.optional("name", good)), "ok", "{good}");
        }
    }

    /// The published patterns say exactly what the checks take, on the cases where they
    /// could drift apart: whitespace as `trim` sees it, control characters, links.
    #[test]
    fn the_patterns_agree_with_the_checks() {
        let corpus = [
            "", " ", "a", " a ", "\u{a0}", "\u{a0}x", "\u{3000}", "\u{2028}", "\u{feff}",
            "\u{200b}", "\u{85}", "x\u{85}", "\t", "a\tb", "a\nb", "a\r\nb", "\u{0}", "a\u{1f}",
            "a\u{7f}", "a\u{9f}", "a\u{a0}b", "ünï", "日本", "😀", "x.com", "a@b", "J.R.R.",
            "1.2.3.4", "ftp://x", "a.b", "ab.cd", "\u{1680}", "\u{180e}",
        ];
        let rules = [
            TextRule::line(100),
            TextRule::lines(100),
            PERSON_OR_ORG_NAME,
        ];
        for rule in rules {
            // The Rust regex crate has no look-ahead: the link part is checked on its own,
            // as the server does, and the rest through the published character classes.
            let strip = |p: String| p.replace(&rule.no_links_prefix(), "");
            let required = Regex::new(&strip(rule.required_pattern())).unwrap();
            let optional = Regex::new(&strip(rule.optional_pattern())).unwrap();
            for s in corpus {
                let link_ok = rule.links || !reads_as_link(s);
                assert_eq!(
                    rule.required("f", s).is_ok(),
                    required.is_match(s) && link_ok,
                    "required {rule:?} {s:?}"
                );
                assert_eq!(
                    rule.optional("f", s).is_ok(),
                    optional.is_match(s) && (link_ok || s.trim().is_empty()),
                    "optional {rule:?} {s:?}"
                );
            }
        }
    }
}
