//! Keyset pagination, as every list endpoint does it: `limit` (default 50, at most 200) and an
//! opaque `cursor` naming the last item of the previous page. Rows are ordered by their UUIDv7
//! id, newest first, so a page costs one index range scan however long the table is.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use uuid::Uuid;

use crate::FieldError;

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
    #[must_use]
    pub fn after_condition<K, I>(&self, key: K, id: I) -> Option<sea_orm::Condition>
    where
        K: sea_orm::ColumnTrait,
        I: sea_orm::ColumnTrait,
    {
        let (last_key, last_id) = self.after.as_ref()?;
        Some(
            sea_orm::Condition::any()
                .add(key.gt(last_key.as_str()))
                .add(
                    sea_orm::Condition::all()
                        .add(key.eq(last_key.as_str()))
                        .add(id.gt(*last_id)),
                ),
        )
    }

    /// Builds a page from up to [`Self::fetch`] rows in key order.
    pub fn page<T>(&self, mut rows: Vec<T>, key: impl Fn(&T) -> (&str, Uuid)) -> Page<T> {
        let limit = usize::try_from(self.limit).unwrap_or(usize::MAX);
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next_cursor = if more {
            rows.last().map(|last| {
                let (k, id) = key(last);
                URL_SAFE_NO_PAD.encode(format!("{id}{k}"))
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

fn decode_key_cursor(cursor: &str) -> Option<(String, Uuid)> {
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(cursor).ok()?).ok()?;
    let id = Uuid::parse_str(text.get(..36)?).ok()?;
    Some((text[36..].to_owned(), id))
}

fn encode_cursor(id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(id.as_bytes())
}

fn decode_cursor(cursor: &str) -> Option<Uuid> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    Uuid::from_slice(&bytes).ok()
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
}
