//! The host side of each WIT interface a function may import, one module per
//! capability. Each is plain Rust state living in the instance's store; the
//! sandbox wires them into the linker (`crate::sandbox::store`).

pub mod console;
pub mod database;
pub mod outbound_http;
pub mod secrets;
