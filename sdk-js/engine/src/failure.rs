//! Turning JS exceptions into the WIT `failure` and `compile-error` records,
//! with the line and column of the author's source when QuickJS knows them.

use crate::FUNCTION_MODULE_NAME;
use crate::edgefn::function::types::{CompileError, Failure, FailureKind};
use javy::quickjs::{Coerced, Ctx, Error as JsError, Value};

struct Thrown {
    name: String,
    message: String,
    stack: Option<String>,
}

/// Reads the pending exception (if `error` is one) without losing a thrown
/// non-Error value such as `throw "boom"`.
fn thrown(ctx: &Ctx<'_>, error: JsError) -> Thrown {
    if !error.is_exception() {
        return Thrown { name: "InternalError".into(), message: error.to_string(), stack: None };
    }
    let value: Value = ctx.catch();
    if let Some(exception) = value.as_exception() {
        let name: Option<String> = exception.get("name").ok();
        return Thrown {
            name: name.unwrap_or_else(|| "Error".into()),
            message: exception.message().unwrap_or_default(),
            stack: exception.stack().filter(|s| !s.trim().is_empty()),
        };
    }
    let message = ctx
        .json_stringify(value.clone())
        .ok()
        .flatten()
        .and_then(|s| s.to_string().ok())
        .or_else(|| value.get::<Coerced<String>>().ok().map(|s| s.0))
        .unwrap_or_else(|| "a value that cannot be printed".into());
    Thrown { name: "Error".into(), message: format!("uncaught {message}"), stack: None }
}

/// The first `function.mjs:LINE:COLUMN` in a QuickJS stack trace.
fn location(stack: Option<&str>) -> (Option<u32>, Option<u32>) {
    let Some(stack) = stack else { return (None, None) };
    let marker = format!("{FUNCTION_MODULE_NAME}:");
    let Some(start) = stack.find(&marker) else { return (None, None) };
    let mut parts = stack[start + marker.len()..]
        .split(|c: char| !c.is_ascii_digit())
        .map(|n| n.parse::<u32>().ok());
    (parts.next().flatten(), parts.next().flatten())
}

pub fn from_js(ctx: &Ctx<'_>, error: JsError, kind: FailureKind) -> Failure {
    let Thrown { name, message, stack } = thrown(ctx, error);
    let (line, column) = location(stack.as_deref());
    Failure { kind, name, message, stack, line, column }
}

/// An error in the engine's own plumbing rather than in the author's code.
pub fn internal(ctx: &Ctx<'_>, error: JsError) -> Failure {
    from_js(ctx, error, FailureKind::UncaughtException)
}

pub fn invalid_module(message: String) -> Failure {
    Failure {
        kind: FailureKind::InvalidModule,
        name: "TypeError".into(),
        message,
        stack: None,
        line: None,
        column: None,
    }
}

pub fn never_settled() -> Failure {
    Failure {
        kind: FailureKind::NeverSettled,
        name: "Error".into(),
        message: "the function's promise never settled: it awaits something that nothing will \
                  resolve (no pending jobs or timers are left)"
            .into(),
        stack: None,
        line: None,
        column: None,
    }
}

pub fn compile_error(ctx: &Ctx<'_>, error: JsError) -> CompileError {
    from_js(ctx, error, FailureKind::InvalidModule).into()
}

impl From<Failure> for CompileError {
    fn from(failure: Failure) -> Self {
        CompileError {
            message: format!("{}: {}", failure.name, failure.message),
            line: failure.line,
            column: failure.column,
        }
    }
}

/// For start-up panics: a readable description of a JS error.
pub fn describe(ctx: &Ctx<'_>, error: JsError) -> String {
    let Thrown { name, message, stack } = thrown(ctx, error);
    format!("{name}: {message}\n{}", stack.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::location;

    #[test]
    fn finds_the_first_frame_in_the_function_module() {
        let stack = "    at boom (function.mjs:7:15)\n    at fetch (function.mjs:2:3)\n";
        assert_eq!(location(Some(stack)), (Some(7), Some(15)));
        assert_eq!(location(Some("    at <eval> (runtime.js:1:1)")), (None, None));
        assert_eq!(location(None), (None, None));
    }
}
