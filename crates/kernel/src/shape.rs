//! Statements whose SQL is written once per shape, for the statements every request runs.
//!
//! Building a statement with sea-query walks its expression tree and writes its SQL on every
//! call: on a page of members, a tenth of the request's CPU went to writing SQL that is the
//! same each time but for its values. A [`Shapes`] builds a statement once per database and
//! shape (which optional parts it has: a filter, a cursor, how many ids a list holds) with
//! stand-in values, remembers its SQL and where each argument goes, and from then on only
//! puts each call's arguments in their places.
//!
//! Every value of a shaped statement is one of its arguments: a value the builder wrote in
//! itself (a tenant id from the caller's scope instead of the argument) would be remembered
//! with the SQL and sent with every later call, so a statement holding one is refused when its
//! shape is first built. In debug builds (every test) each call also builds the statement from
//! its own arguments and checks that it is the one the shape produced, so a shape that depends
//! on more than its key fails loudly.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, RwLock};

use sea_orm::sea_query::SelectStatement;
use sea_orm::{DatabaseBackend, DbErr, Statement, Value, Values};

/// A statement's SQL, with which argument each of its placeholders takes.
struct Template {
    sql: String,
    slots: Vec<usize>,
}

/// Templates by database (whether PostgreSQL) and shape key.
type Known = HashMap<(bool, u64), Arc<Template>>;

/// The shapes of one statement, by database and shape key.
pub struct Shapes {
    name: &'static str,
    known: LazyLock<RwLock<Known>>,
}

impl Shapes {
    /// The shapes of the statement `name` (named in the panics that refuse a bad one).
    #[must_use]
    pub const fn new(name: &'static str) -> Self {
        Self {
            name,
            known: LazyLock::new(|| RwLock::new(HashMap::new())),
        }
    }

    /// The statement `build` writes for `args`, on `backend`. `key` names the shape: every
    /// call with the same key must build the same SQL for any arguments of the same types,
    /// and each value in it must be one of `args` (by position: `build` is given the values
    /// to use).
    ///
    /// Refused (a [`DbErr::Custom`], never run) when the statement holds a value that is not
    /// one of the arguments, or an argument's type has no stand-in (booleans, JSON: make
    /// those part of the shape instead).
    ///
    /// # Panics
    ///
    /// In debug builds, when the shape's SQL and values are not those `build` writes for
    /// `args`.
    pub fn statement(
        &self,
        backend: DatabaseBackend,
        key: u64,
        args: Vec<Value>,
        build: impl Fn(&[Value]) -> SelectStatement,
    ) -> Result<Statement, DbErr> {
        let known_key = (backend == DatabaseBackend::Postgres, key);
        let cached = self
            .known
            .read()
            .ok()
            .and_then(|known| known.get(&known_key).cloned());
        let template = match cached {
            Some(template) => template,
            None => {
                let template = Arc::new(self.template(backend, &args, &build)?);
                if let Ok(mut known) = self.known.write() {
                    known.insert(known_key, Arc::clone(&template));
                }
                template
            }
        };
        let values = template.slots.iter().map(|&i| args[i].clone()).collect();
        let stmt = Statement::from_sql_and_values(backend, template.sql.clone(), Values(values));
        if cfg!(debug_assertions) {
            let fresh = backend.build(&build(&args));
            assert!(
                fresh.sql == stmt.sql && fresh.values == stmt.values,
                "{}: shape {key} depends on more than its key:\n{}\n{}",
                self.name,
                stmt.sql,
                fresh.sql
            );
        }
        Ok(stmt)
    }

    /// Builds the shape with a stand-in for each argument and finds where each one went.
    fn template(
        &self,
        backend: DatabaseBackend,
        args: &[Value],
        build: &impl Fn(&[Value]) -> SelectStatement,
    ) -> Result<Template, DbErr> {
        let stand_ins = args
            .iter()
            .enumerate()
            .map(|(i, arg)| {
                stand_in(arg, i).ok_or_else(|| {
                    DbErr::Custom(format!(
                        "{}: argument {i} ({arg:?}) has no stand-in",
                        self.name
                    ))
                })
            })
            .collect::<Result<Vec<Value>, DbErr>>()?;
        let built = backend.build(&build(&stand_ins));
        let values = built.values.map(|v| v.0).unwrap_or_default();
        let slots = values
            .iter()
            .map(|value| {
                stand_ins.iter().position(|s| s == value).ok_or_else(|| {
                    DbErr::Custom(format!(
                        "{}: the value {value:?} is none of the arguments:\n{}",
                        self.name, built.sql
                    ))
                })
            })
            .collect::<Result<Vec<usize>, DbErr>>()?;
        Ok(Template {
            sql: built.sql,
            slots,
        })
    }
}

/// A value of `arg`'s type that no caller passes: argument `i`'s stand-in.
fn stand_in(arg: &Value, i: usize) -> Option<Value> {
    const MARK: u128 = 0x7e4a_47f1_9c3b_4d6e_8a21_5b0c_d9e8_f700;
    let n = u32::try_from(i).ok()?;
    Some(match arg {
        Value::Uuid(_) => Value::Uuid(Some(uuid::Uuid::from_u128(MARK + u128::from(n)))),
        Value::String(_) => Value::String(Some(format!("\u{0}tenantry shape argument {i}"))),
        Value::BigInt(_) => Value::BigInt(Some(i64::MIN + i64::from(n))),
        Value::BigUnsigned(_) => Value::BigUnsigned(Some(u64::MAX - u64::from(n))),
        Value::Int(_) => Value::Int(Some(i32::MIN + i32::try_from(n).ok()?)),
        Value::Unsigned(_) => Value::Unsigned(Some(u32::MAX - n)),
        Value::ChronoDateTimeUtc(_) => Value::ChronoDateTimeUtc(Some(
            chrono::DateTime::from_timestamp(-62_000_000_000 + i64::from(n), 0)?,
        )),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use sea_orm::sea_query::{Alias, Expr, ExprTrait as _, Query};

    use super::*;

    fn by_tenant(a: &[Value]) -> SelectStatement {
        let mut q = Query::select();
        q.column(Alias::new("id"))
            .from(Alias::new("things"))
            .and_where(Expr::col(Alias::new("tenant_id")).eq(a[0].clone()))
            .and_where(Expr::col(Alias::new("name")).eq(a[1].clone()))
            .limit(a[2].clone().unwrap::<u64>());
        q
    }

    #[test]
    fn each_call_gets_the_statement_its_own_arguments_build() {
        let shapes = Shapes::new("things");
        for backend in [DatabaseBackend::Postgres, DatabaseBackend::Sqlite] {
            for (tenant, name, limit) in [(1, "a", 5_u64), (2, "b", 7), (3, "it's", 51)] {
                let args: Vec<Value> = vec![
                    uuid::Uuid::from_u128(tenant).into(),
                    name.into(),
                    limit.into(),
                ];
                let shaped = shapes
                    .statement(backend, 0, args.clone(), by_tenant)
                    .unwrap();
                let fresh = backend.build(&by_tenant(&args));
                assert_eq!((shaped.sql, shaped.values), (fresh.sql, fresh.values));
            }
        }
        // One template per database.
        assert_eq!(shapes.known.read().unwrap().len(), 2);
    }

    #[test]
    fn a_value_written_into_the_statement_instead_of_an_argument_is_refused() {
        let tenant = uuid::Uuid::from_u128(9);
        let refused = Shapes::new("baked").statement(
            DatabaseBackend::Postgres,
            0,
            vec![tenant.into(), "a".into(), 5_u64.into()],
            // The tenant from the caller's scope, not the argument: it would be sent with
            // every later call.
            |a| by_tenant(&[tenant.into(), a[1].clone(), a[2].clone()]),
        );
        let Err(DbErr::Custom(why)) = refused else {
            panic!("a baked-in value was accepted: {refused:?}");
        };
        assert!(why.contains("is none of the arguments"), "{why}");
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "depends on more than its key")]
    fn a_shape_that_depends_on_more_than_its_key_fails_in_debug_builds() {
        let shapes = Shapes::new("unkeyed");
        let build = |a: &[Value]| {
            let mut q = by_tenant(a);
            // An optional part the key does not say is there.
            if a[1] == Value::from("with extra") {
                q.and_where(Expr::col(Alias::new("extra")).is_null());
            }
            q
        };
        let args = |name: &str| vec![uuid::Uuid::nil().into(), name.into(), 5_u64.into()];
        shapes
            .statement(DatabaseBackend::Postgres, 0, args("plain"), build)
            .unwrap();
        let _ = shapes.statement(DatabaseBackend::Postgres, 0, args("with extra"), build);
    }
}
