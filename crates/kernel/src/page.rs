//! Keyset pagination, as every list endpoint does it: `limit` (default 50, at most 200) and a
//! `cursor` naming the last item of the previous page. Rows are ordered by their UUIDv7 id,
//! newest first, so a page costs one index range scan however long the table is.
//!
//! A cursor is lowercase hex: the last item's id (32 digits) — for lists ordered by a name,
//! followed by the name's UTF-8 bytes. Every string of that form is a position in the list, so
//! the API document can state the form exactly ([`ID_CURSOR_PATTERN`], [`KEY_CURSOR_PATTERN`])
//! and a cursor a client built itself pages from wherever it points.

use uuid::Uuid;

use crate::FieldError;

/// The form of a cursor of a list ordered by id (empty: the first page).
pub const ID_CURSOR_PATTERN: &str = "^(?:[0-9a-f]{32})?$";
/// The form of a cursor of a list ordered by a name and then by id (empty: the first page).
pub const KEY_CURSOR_PATTERN: &str = "^(?:[0-9a-f]{32}(?:[0-9a-f]{2})*)?$";

/// Items per page when the caller does not say.
pub const DEFAULT_LIMIT: u64 = 50;
/// The most items one page may hold.
pub const MAX_LIMIT: u64 = 200;

/// A validated request for one page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageRequest {
    /// How many items, 1 to [`MAX_LIMIT`].
    pub limit: u64,
    /// Return only items older than this one (ids below it).
    pub before: Option<Uuid>,
}

impl Default for PageRequest {
    fn default() -> Self {
        Self {
            limit: DEFAULT_LIMIT,
            before: None,
        }
    }
}

impl PageRequest {
    /// Parses the `limit` and `cursor` query parameters.
    pub fn parse(limit: Option<u64>, cursor: Option<&str>) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let limit = match limit {
            None => DEFAULT_LIMIT,
            Some(n) if (1..=MAX_LIMIT).contains(&n) => n,
            Some(_) => {
                errors.push(FieldError::new(
                    "limit",
                    "out_of_range",
                    format!("limit must be between 1 and {MAX_LIMIT}"),
                ));
                DEFAULT_LIMIT
            }
        };
        let before = match cursor.filter(|c| !c.is_empty()) {
            None => None,
            Some(c) => match decode_cursor(c) {
                Some(id) => Some(id),
                None => {
                    errors.push(FieldError::new(
                        "cursor",
                        "invalid_cursor",
                        "the cursor is not one this API returned",
                    ));
                    None
                }
            },
        };
        if errors.is_empty() {
            Ok(Self { limit, before })
        } else {
            Err(errors)
        }
    }

    /// How many rows to fetch: one more than the page, to learn whether another follows.
    #[must_use]
    pub fn fetch(&self) -> u64 {
        self.limit + 1
    }
}

/// One page of a list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<T> {
    /// The items, newest first.
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from up to [`PageRequest::fetch`] rows, newest first.
    pub fn from_rows(mut rows: Vec<T>, request: &PageRequest, id: impl Fn(&T) -> Uuid) -> Self {
        let limit = usize::try_from(request.limit).unwrap_or(usize::MAX);
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next_cursor = if more {
            rows.last().map(|last| encode_cursor(id(last)))
        } else {
            None
        };
        Self {
            items: rows,
            next_cursor,
        }
    }

    /// The same page with each item converted.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
        }
    }
}

/// A request for one page of a list ordered by a text key (a name) and then by id, ascending:
/// `after` is the key and id of the last item of the previous page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPageRequest {
    /// How many items, 1 to [`MAX_LIMIT`].
    pub limit: u64,
    /// Return only items after this key and id.
    pub after: Option<(String, Uuid)>,
}

impl KeyPageRequest {
    /// Parses the `limit` and `cursor` query parameters.
    pub fn parse(limit: Option<u64>, cursor: Option<&str>) -> Result<Self, Vec<FieldError>> {
        // The limit rules are the same as for id-ordered pages; only the cursor differs.
        let limit_only = PageRequest::parse(limit, None);
        let after = match cursor.filter(|c| !c.is_empty()) {
            None => Ok(None),
            Some(c) => decode_key_cursor(c).map(Some).ok_or_else(|| {
                FieldError::new(
                    "cursor",
                    "invalid_cursor",
                    "the cursor is not one this API returned",
                )
            }),
        };
        match (limit_only, after) {
            (Ok(p), Ok(after)) => Ok(Self {
                limit: p.limit,
                after,
            }),
            (l, a) => {
                let mut errors = l.err().unwrap_or_default();
                errors.extend(a.err());
                Err(errors)
            }
        }
    }

    /// How many rows to fetch: one more than the page, to learn whether another follows.
    #[must_use]
    pub fn fetch(&self) -> u64 {
        self.limit + 1
    }

    /// The rows after the cursor in `(key, id)` order, for a query ordered by those columns;
    /// `None` on the first page.
    ///
    /// Written as a row comparison, `(key, id) > ($1, $2)`, which PostgreSQL and SQLite both
    /// take as the start of a range scan on an index ending in `key, id`: a page costs the
    /// same at any depth. (The equivalent `key > $1 OR (key = $1 AND id > $2)` is applied as
    /// a filter, reading every row before the cursor.)
    #[must_use]
    pub fn after_condition<K, I>(&self, key: K, id: I) -> Option<sea_orm::Condition>
    where
        K: sea_orm::ColumnTrait,
        I: sea_orm::ColumnTrait,
    {
        let (last_key, last_id) = self.after.as_ref()?;
        Some(after_condition(
            key,
            id,
            (last_key.as_str().into(), (*last_id).into()),
        ))
    }

    /// Builds a page from up to [`Self::fetch`] rows in key order.
    pub fn page<T>(&self, mut rows: Vec<T>, key: impl Fn(&T) -> (&str, Uuid)) -> Page<T> {
        let limit = usize::try_from(self.limit).unwrap_or(usize::MAX);
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next_cursor = if more {
            rows.last().map(|last| {
                let (k, id) = key(last);
                let mut cursor = encode_cursor(id);
                cursor.push_str(&hex(k.as_bytes()));
                cursor
            })
        } else {
            None
        };
        Page {
            items: rows,
            next_cursor,
        }
    }
}

/// The id and the name a key cursor names. Any bytes make a name — what is not UTF-8, or is a
/// control character (which no database comparison may carry), reads as U+FFFD — so every
/// cursor of the documented form is a position.
fn decode_key_cursor(cursor: &str) -> Option<(String, Uuid)> {
    let bytes = unhex(cursor)?;
    let id = Uuid::from_slice(bytes.get(..16)?).ok()?;
    let key = String::from_utf8_lossy(&bytes[16..])
        .chars()
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect();
    Some((key, id))
}

fn encode_cursor(id: Uuid) -> String {
    hex(id.as_bytes())
}

fn decode_cursor(cursor: &str) -> Option<Uuid> {
    let bytes = unhex(cursor)?;
    Uuid::from_slice(&bytes).ok()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Lowercase hex only, as the cursor patterns say.
fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    text.as_bytes()
        .chunks(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

/// The rows after `(last_key, last_id)` in `(key, id)` order, as a row comparison (see
/// [`KeyPageRequest::after_condition`]); for statements built from their arguments
/// ([`crate::shape::Shapes`]).
#[must_use]
pub fn after_condition<K, I>(
    key: K,
    id: I,
    (last_key, last_id): (sea_orm::Value, sea_orm::Value),
) -> sea_orm::Condition
where
    K: sea_orm::ColumnTrait,
    I: sea_orm::ColumnTrait,
{
    use sea_orm::sea_query::{Expr, ExprTrait as _};
    sea_orm::Condition::all().add(
        Expr::tuple([
            Expr::col(key.as_column_ref()),
            Expr::col(id.as_column_ref()),
        ])
        .gt(Expr::tuple([Expr::val(last_key), Expr::val(last_id)])),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_bounds_and_cursors() {
        assert_eq!(
            PageRequest::parse(None, None).unwrap(),
            PageRequest::default()
        );
        assert_eq!(PageRequest::parse(Some(200), Some("")).unwrap().limit, 200);
        let errors = PageRequest::parse(Some(0), Some("not a cursor")).unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| (e.field.as_str(), e.code)).collect();
        assert_eq!(
            fields,
            [("limit", "out_of_range"), ("cursor", "invalid_cursor")]
        );
        assert!(PageRequest::parse(Some(201), None).is_err());
    }

    #[test]
    fn a_page_hands_out_a_cursor_only_when_more_follow() {
        let ids: Vec<Uuid> = (0..5).map(|_| Uuid::now_v7()).rev().collect();
        let request = PageRequest::parse(Some(2), None).unwrap();
        let page = Page::from_rows(ids[..3].to_vec(), &request, |id| *id);
        assert_eq!(page.items, ids[..2]);
        let cursor = page.next_cursor.expect("a third row exists");
        let next = PageRequest::parse(Some(2), Some(&cursor)).unwrap();
        assert_eq!(next.before, Some(ids[1]));

        let last = Page::from_rows(ids[3..].to_vec(), &request, |id| *id);
        assert_eq!(last.items, ids[3..]);
        assert_eq!(last.next_cursor, None);
    }

    #[test]
    fn key_cursors_carry_the_key_and_the_id() {
        let rows = vec![
            ("Ada", Uuid::now_v7()),
            ("Bob", Uuid::now_v7()),
            ("Cy", Uuid::nil()),
        ];
        let request = KeyPageRequest::parse(Some(2), None).unwrap();
        let page = request.page(rows.clone(), |r| (r.0, r.1));
        let next = KeyPageRequest::parse(Some(2), page.next_cursor.as_deref()).unwrap();
        assert_eq!(next.after, Some(("Bob".to_owned(), rows[1].1)));
        let errors = KeyPageRequest::parse(Some(0), Some("bm9wZQ")).unwrap_err();
        assert_eq!(errors.len(), 2);
    }

    /// Every string of the documented forms is a cursor, and nothing else is.
    #[test]
    fn cursors_are_exactly_their_documented_forms() {
        let id = regex::Regex::new(ID_CURSOR_PATTERN).unwrap();
        let key = regex::Regex::new(KEY_CURSOR_PATTERN).unwrap();
        let any_id = "0123456789abcdef0123456789abcdef";
        for (cursor, is_id, is_key) in [
            (any_id.to_owned(), true, true),
            (format!("{any_id}00ff7f"), false, true),
            (format!("{any_id}0"), false, false),
            (any_id.to_uppercase(), false, false),
            ("not a cursor".to_owned(), false, false),
        ] {
            assert_eq!(id.is_match(&cursor), is_id, "{cursor}");
            assert_eq!(decode_cursor(&cursor).is_some(), is_id, "{cursor}");
            assert_eq!(key.is_match(&cursor), is_key, "{cursor}");
            assert_eq!(decode_key_cursor(&cursor).is_some(), is_key, "{cursor}");
        }
        // Empty is the first page, in both forms.
        assert!(id.is_match("") && key.is_match(""));
        assert_eq!(PageRequest::parse(None, Some("")).unwrap().before, None);
        assert_eq!(KeyPageRequest::parse(None, Some("")).unwrap().after, None);
        // A name that is not text still reads as one, without control characters.
        let (name, _) = decode_key_cursor(&format!("{any_id}00ff41")).unwrap();
        assert_eq!(name, "\u{fffd}\u{fffd}A");
    }
}
