//! `edgefn:function/database`: application data, queried as the caller.
//!
//! Invariant: no query runs without the caller's row-level security. The
//! query planner and policies arrive with the database capability; until then
//! every call is refused with a stable code, so no function can reach data.

use edgefn_world::database::{DatabaseError, Host};

/// The application database as one invocation sees it.
#[derive(Debug, Default)]
pub struct ApplicationDatabase;

fn unavailable() -> DatabaseError {
    DatabaseError {
        code: "unavailable".into(),
        message: "this edgefn server does not offer an application database to functions yet".into(),
    }
}

impl Host for ApplicationDatabase {
    fn execute(&mut self, _plan_json: String) -> wasmtime::Result<Result<String, DatabaseError>> {
        Ok(Err(unavailable()))
    }

    fn begin(&mut self) -> wasmtime::Result<Result<(), DatabaseError>> {
        Ok(Err(unavailable()))
    }

    fn commit(&mut self) -> wasmtime::Result<Result<(), DatabaseError>> {
        Ok(Err(unavailable()))
    }

    fn rollback(&mut self) -> wasmtime::Result<Result<(), DatabaseError>> {
        Ok(Err(unavailable()))
    }
}
