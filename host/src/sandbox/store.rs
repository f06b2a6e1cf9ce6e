//! What one instance's `Store` holds, and the linker that connects the
//! engine's imports to it.
//!
//! Invariant: functions get no filesystem, no environment variables, no
//! arguments and no sockets. WASI is linked only because the engine's libc
//! imports it; every ambient authority in it is switched off here.

use super::limits::MemoryLimiter;
use super::module_state::{MemoryView, ModuleState, RestoredMemory, SavedMemory};
use std::sync::Arc;
use crate::capabilities::{
    console::Console, database::ApplicationDatabase, outbound_http::Outbound, secrets::GrantedSecrets,
};
use std::time::Instant;
use wasmtime::Store;
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime_wasi::{HostMonotonicClock, WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// The state of one instance.
pub struct StoreState {
    /// Built on the instance's first WASI call, not with the store: most
    /// requests make none, and building one (its random generators, clocks
    /// and stdio) cost every request about 1% of its CPU.
    wasi: Option<WasiCtx>,
    /// When the store was made for its request: zero on the instance's
    /// monotonic clock.
    started: Instant,
    http: WasiHttpCtx,
    table: ResourceTable,
    pub(super) outbound: Outbound,
    pub(super) limiter: MemoryLimiter,
    pub(super) console: Console,
    secrets: GrantedSecrets,
    pub(super) database: ApplicationDatabase,
    /// What `module-state.save` read, for `Sandbox::prepare`, and the
    /// engine's call stack, which it did not.
    pub(super) saved_memory: Option<(SavedMemory, std::ops::Range<usize>)>,
    /// Whether `module-state.save` reads the whole memory (a fresh
    /// instance's, once at startup) or only the pages the slot wrote.
    pub(super) save_whole_memory: bool,
    /// What `module-state.restore` writes back, set by `Sandbox::invoke`.
    pub(super) module_state: Option<Arc<ModuleState>>,
}

impl StoreState {
    pub(super) fn new(
        limiter: MemoryLimiter,
        console: Console,
        capabilities: super::Capabilities,
    ) -> Self {
        let super::Capabilities { secrets, database, outbound } = capabilities;
        StoreState {
            wasi: None,
            started: Instant::now(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            outbound,
            limiter,
            console,
            secrets,
            database,
            saved_memory: None,
            save_whole_memory: false,
            module_state: None,
        }
    }

    /// Whether the instance made any WASI call (a clock, randomness, a
    /// poll): the context is built on the first.
    pub(super) fn used_wasi(&self) -> bool {
        self.wasi.is_some()
    }
}

impl StoreState {
    /// The state of a store for the host's own setup work: no capabilities,
    /// and the largest memory any function may be configured with.
    pub(super) fn for_setup(config: &super::SandboxConfig) -> Self {
        StoreState::new(MemoryLimiter::new(config.max_memory_bytes), Console::new(config.console), super::Capabilities::default())
    }

    /// The execution span capabilities' spans (queries, secret reads) go under.
    pub(super) fn set_trace(&mut self, cx: &opentelemetry::Context) {
        self.database.set_trace(cx.clone());
        self.secrets.set_trace(cx.clone());
        self.outbound.set_trace(cx.clone());
    }
}

impl WasiView for StoreState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        let started = self.started;
        let ctx = self.wasi.get_or_insert_with(|| {
            WasiCtx::builder()
                .allow_tcp(false)
                .allow_udp(false)
                .allow_ip_name_lookup(false)
                .monotonic_clock(RequestClock { started })
                .build()
        });
        WasiCtxView { ctx, table: &mut self.table }
    }
}

/// The monotonic clock a function sees: nanoseconds since its store was
/// made for the request, whenever the WASI context was built. The engine's clock for
/// timers and `console.time` reads it as is, so it keeps no origin of its
/// own and reads no clock until a function asks.
struct RequestClock {
    started: Instant,
}

impl HostMonotonicClock for RequestClock {
    fn resolution(&self) -> u64 {
        wasmtime_wasi::clocks::MonotonicClock::new().resolution()
    }

    fn now(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

impl WasiHttpView for StoreState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.outbound }
    }
}

/// A store for the host's own setup work, which runs none of a function's
/// code (Wizer initializing the engine, instantiating the engine image to
/// build its memory image): no fuel limit and no deadline apply.
pub(super) fn unmetered(engine: &wasmtime::Engine, state: StoreState) -> wasmtime::Result<Store<StoreState>> {
    let mut store = Store::new(engine, state);
    store.set_fuel(u64::MAX)?;
    // A delta, added to the engine's current epoch: `u64::MAX` overflows once
    // the epoch has ticked, as it has when a group's engine copy is replaced
    // while the server runs. Half of it is as good as never.
    store.set_epoch_deadline(u64::MAX / 2);
    Ok(store)
}

/// Every import of the `function` world, bound to [`StoreState`].
pub(super) fn linker(engine: &wasmtime::Engine) -> wasmtime::Result<Linker<StoreState>> {
    let mut linker = Linker::<StoreState>::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    edgefn_world::console::add_to_linker::<_, HasSelf<Console>>(&mut linker, |s| &mut s.console)?;
    edgefn_world::secrets::add_to_linker::<_, HasSelf<GrantedSecrets>>(&mut linker, |s| &mut s.secrets)?;
    edgefn_world::database::add_to_linker::<_, HasSelf<ApplicationDatabase>>(&mut linker, |s| &mut s.database)?;
    add_module_state_to_linker(&mut linker)?;
    Ok(linker)
}

/// `module-state`, by hand rather than through the bindings: its list
/// arguments stand for the instance's whole memory (see `module_state.rs`).
fn add_module_state_to_linker(linker: &mut Linker<StoreState>) -> wasmtime::Result<()> {
    let mut instance = linker.instance("edgefn:function/module-state@0.1.0")?;
    instance.func_wrap(
        "save",
        |mut store: wasmtime::StoreContextMut<'_, StoreState>, (stack_low, stack_high, memory): (u32, u32, MemoryView)| {
            let state = store.data_mut();
            // SAFETY: within the host call the view was lifted for.
            let bytes = unsafe { memory.bytes() };
            let saved = if state.save_whole_memory { SavedMemory::whole(bytes) } else { SavedMemory::written(bytes) };
            state.saved_memory = Some((saved, stack_low as usize..stack_high as usize));
            Ok(())
        },
    )?;
    instance.func_wrap("restore", |mut store: wasmtime::StoreContextMut<'_, StoreState>, (): ()| {
        let state = store
            .data_mut()
            .module_state
            .take()
            .ok_or_else(|| wasmtime::format_err!("no module state to restore in this instance"))?;
        Ok((RestoredMemory(state),))
    })?;
    Ok(())
}
