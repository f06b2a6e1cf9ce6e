//! Host-side bindings for the `edgefn:function/function` world (`wit/edgefn.wit`).
//!
//! The guest side (the JS engine in `sdk-js/engine`) binds the same files with
//! `wit-bindgen`; the two never share Rust code, only the WIT.

#![allow(missing_docs)]

wasmtime::component::bindgen!({
    path: ".",
    world: "function",
    // Database calls wait on the database: async on the host, still a
    // blocking call to the guest (its fiber is suspended meanwhile).
    imports: {
        "edgefn:function/database.execute": async | trappable,
        "edgefn:function/database.begin": async | trappable,
        "edgefn:function/database.commit": async | trappable,
        "edgefn:function/database.rollback": async | trappable,
        default: trappable,
    },
    exports: { default: async },
    with: {
        "wasi:io": wasmtime_wasi::p2::bindings::io,
        "wasi:http": wasmtime_wasi_http::p2::bindings::http,
    },
    require_store_data_send: true,
});

pub use edgefn::function::{console, database, secrets, types};
pub use exports::edgefn::function::{compiler, handler};
