//! The wasmtime sandbox: one engine image, loaded as a few modules that keep
//! their pool slots apart (deploy-time work, and groups of functions: see
//! `EngineCopy`), each pre-instantiated once, and a fresh instance with its
//! own store and hard limits for every request.
//!
//! Invariants:
//! - an instance never outlives the request that created it, and never sees
//!   another request's memory (copy-on-write from the pre-initialized image);
//! - fuel, memory and wall-clock deadline are enforced on every instance,
//!   including the ones that compile sources at deploy time;
//! - at most `max_instances` instances exist at once: a semaphore sits in front
//!   of the pooling allocator, so requests queue instead of failing the pool.

mod engine_image;
pub mod limits;
mod module_state;
mod spans;
mod store;

pub use module_state::ModuleState;

use crate::capabilities::console::{Console, ConsoleLimits, ConsoleLine};
use crate::capabilities::database::{ApplicationDatabase, DatabaseUsage};
use crate::capabilities::secrets::GrantedSecrets;
use crate::capabilities::outbound_http::{Outbound, OutboundUsage};
use crate::telemetry::InvocationTrace;
use edgefn_world::types::{Failure, FailureKind, Invocation, Request, Response};
use edgefn_world::FunctionPre;
use limits::{Limits, MemoryLimiter};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};
use store::StoreState;
use tokio::sync::Semaphore;
use wasmtime::component::{ComponentExportIndex, ComponentNamedList, Instance, Lift, Lower, TypedFunc};
use wasmtime::{Store, Trap, UpdateDeadline};

/// How often the epoch ticks: the granularity of deadlines, and how often a
/// long-running guest yields its thread to other requests.
const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Linear memory kept resident in a pool slot between instances: covers the
/// engine snapshot's heap (about 1.7 MiB) with room for what requests touch.
const KEEP_RESIDENT_BYTES: usize = 8 << 20;

/// Sandbox settings, each with a default the server config can override.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Instances that may exist at once (the pool's size).
    pub max_instances: u32,
    /// Largest memory any function may be configured with.
    pub max_memory_bytes: u64,
    /// How long a request may wait for a free instance slot.
    pub queue_timeout: Duration,
    /// Console caps per invocation.
    pub console: ConsoleLimits,
    /// Where the compiled engine image is cached.
    pub cache_dir: std::path::PathBuf,
}

/// What stopped an invocation, or that nothing did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The function returned a response.
    Ok,
    /// It threw, returned something invalid, or never settled.
    Error,
    /// It ran out of fuel.
    FuelExhausted,
    /// It tried to grow memory past its limit.
    MemoryLimit,
    /// It was still running at its deadline.
    Deadline,
}

impl Outcome {
    /// The stable name used in execution records and APIs.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error => "error",
            Outcome::FuelExhausted => "fuel_exhausted",
            Outcome::MemoryLimit => "memory_limit",
            Outcome::Deadline => "deadline",
        }
    }
}

/// Why an invocation produced no response, for the caller and the record.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExecutionError {
    /// A short, stable description: `uncaught exception`, `fuel exhausted`...
    pub error: &'static str,
    /// What happened, in words a person understands.
    pub message: String,
    /// The JS error's name, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// JS stack trace, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stack: Option<String>,
    /// 1-based line in the function's source, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// 1-based column in the function's source, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<u32>,
}

impl ExecutionError {
    /// An error without JS details (a trap, a refused request...).
    pub fn new(error: &'static str, message: String) -> Self {
        ExecutionError { error, message, name: None, stack: None, line: None, column: None }
    }

    fn from_failure(failure: Failure) -> Self {
        let error = match failure.kind {
            FailureKind::UncaughtException => "uncaught exception",
            FailureKind::InvalidModule => "invalid module",
            FailureKind::NeverSettled => "promise never settled",
        };
        ExecutionError {
            error,
            message: format!("{}: {}", failure.name, failure.message),
            name: Some(failure.name),
            stack: failure.stack,
            line: failure.line,
            column: failure.column,
        }
    }
}

/// Time spent in each phase of an invocation, in microseconds.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Timings {
    /// Waiting for a free instance slot.
    pub queue_us: u64,
    /// Creating the store and instantiating the engine image.
    pub instantiate_us: u64,
    /// Running the function until its response was complete.
    pub run_us: u64,
}

/// Everything the sandbox knows about one finished invocation.
#[derive(Debug)]
pub struct Execution<T> {
    /// What stopped it.
    pub outcome: Outcome,
    /// The function's result, or why there is none.
    pub result: Result<T, ExecutionError>,
    /// Console output, capped.
    pub console: Vec<ConsoleLine>,
    /// Fuel consumed.
    pub fuel_consumed: u64,
    /// Largest linear memory size reached, in bytes.
    pub peak_memory_bytes: u64,
    /// Where the time went.
    pub timings: Timings,
    /// What it did with the application database.
    pub database: DatabaseUsage,
    /// The outbound requests it made.
    pub outbound: OutboundUsage,
}

/// The host capabilities one invocation is granted. The default grants
/// nothing: no secrets, no database, no outbound requests (compiling).
#[derive(Default)]
pub struct Capabilities {
    pub secrets: GrantedSecrets,
    pub database: ApplicationDatabase,
    pub outbound: Outbound,
}

/// The sandbox is full and stayed full for the whole queue timeout.
#[derive(Debug, thiserror::Error)]
#[error("all {0} instance slots stayed busy for the whole queue timeout")]
pub struct Overloaded(pub u32);

/// `handler.handle`'s parameters and results, as the host passes and reads them.
type HandleParams<'a> = (&'a [u8], &'a Request, &'a Invocation);
type HandleResults = (Result<Response, Failure>,);
/// `handler.prepare`'s and `handler.resume`'s.
type PrepareParams<'a> = (&'a [u8],);
type PrepareResults = (Result<(), Failure>,);
type ResumeParams = (u32,);

/// How many copies of the engine requests run in: functions are spread over
/// them, each function on the same one until its requests turn out to be
/// large (see `EngineCopy`).
pub const SLOT_GROUPS: usize = 4;

/// The copy after the [`SLOT_GROUPS`]: functions whose requests grow their
/// memory by [`LARGE_MEMORY_GROWTH`] or more move there, away from the
/// functions whose slots they would otherwise keep writing pages into.
const LARGE_GROUP: usize = SLOT_GROUPS;

/// How far past a fresh instance's memory a request must grow the memory for
/// its function to count as large. Before growing it, such a request has
/// used up the engine's request arena (256 KiB) and the free blocks of the
/// snapshot's heap: pages all over the slot's memory, each of which stays
/// the slot's private copy and is copied back by every later reset of the
/// slot, whichever function it serves (measured in `benches/README.md`,
/// seventh session: a function building 20,000 objects, peak memory 5.2 MB
/// against a fresh instance's 2.3 MB, raised hello world's CPU per request
/// by a third to a half in the group they shared). Hello world and the JSON
/// API never grow it. A function that writes less than that, short of
/// growing the memory, is not caught.
const LARGE_MEMORY_GROWTH: u64 = 1 << 20;

/// The engine image, pre-instantiated, with the pool in front of it.
pub struct Sandbox {
    engine: wasmtime::Engine,
    /// What requests run in, one copy per group of functions and one for
    /// large functions; a group's copy is replaced by a fresh one when a
    /// large function leaves it (see [`Sandbox::move_to_large_group`]).
    serving: Arc<[RwLock<Arc<EngineCopy>>]>,
    /// What a fresh copy is loaded from.
    source: Arc<CopySource>,
    /// A request that reaches this much memory makes its function large.
    large_memory_bytes: u64,
    /// Serving copies replaced by fresh ones so far.
    copies_replaced: Arc<AtomicU64>,
    /// What deploy-time work runs in: compiling sources, preparing module
    /// states, a fresh instance's memory.
    setup: EngineCopy,
    /// Which group each function name is in, and how many are in each.
    groups: std::sync::Mutex<SlotGroups>,
    /// A fresh instance's memory, which module states are the difference from.
    pristine: module_state::SavedMemory,
    slots: Arc<Semaphore>,
    config: SandboxConfig,
    _epoch: EpochTicker,
}

/// The group of functions whose requests share pool slots with each other
/// only that a function is in: shared by every holder, so that a move to the
/// large group reaches the deployments that hold it without a lookup per
/// request.
#[derive(Debug, Clone)]
pub struct SlotGroup(Arc<AtomicUsize>);

impl SlotGroup {
    fn index(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Default)]
struct SlotGroups {
    by_function: std::collections::HashMap<String, SlotGroup>,
    /// Functions per group, the large group's not counted.
    members: [usize; SLOT_GROUPS],
}

impl SlotGroups {
    /// `function`'s group, which a function seen for the first time gets:
    /// the one with the fewest, the first of those.
    fn of(&mut self, function: &str) -> SlotGroup {
        if let Some(group) = self.by_function.get(function) {
            return group.clone();
        }
        let fewest = (0..SLOT_GROUPS).min_by_key(|&index| (self.members[index], index)).expect("SLOT_GROUPS > 0");
        self.members[fewest] += 1;
        let group = SlotGroup(Arc::new(AtomicUsize::new(fewest)));
        self.by_function.insert(function.to_owned(), group.clone());
        group
    }

    /// Moves a function's `group` to the large group; the group it left, if
    /// it was not there already.
    fn move_to_large(&mut self, group: &SlotGroup) -> Option<usize> {
        let left = group.0.swap(LARGE_GROUP, Ordering::Relaxed);
        if left == LARGE_GROUP {
            return None;
        }
        self.members[left] -= 1;
        Some(left)
    }
}

/// What a fresh serving copy of the engine is made from.
struct CopySource {
    engine: wasmtime::Engine,
    linker: wasmtime::component::Linker<StoreState>,
    image: engine_image::EngineImage,
    config: SandboxConfig,
    /// The sandbox's slots: a fresh copy's first instance takes one too.
    slots: Arc<Semaphore>,
}

impl CopySource {
    /// A new copy, instantiated once (see [`instantiate_at_startup`]).
    async fn fresh_copy(&self) -> anyhow::Result<EngineCopy> {
        let copy = EngineCopy::new(&self.linker, &self.image.load(&self.engine)?)?;
        let _slot = self.slots.acquire().await.expect("the slot semaphore is never closed");
        drop(instantiate_at_startup(&self.engine, &copy, &self.config).await?);
        Ok(copy)
    }
}

/// One loaded copy of the engine component, pre-instantiated.
///
/// Why several of the same: a pool slot keeps every page any instance wrote
/// in it as a private copy, and each later reset of that slot copies all of
/// them back from the image, so what one function writes is paid for by
/// every request the slot serves afterwards, whichever function it runs.
/// wasmtime gives a slot back to an instance of the module it last held when
/// it can, and maps the image afresh when the module changes, so copies of
/// the engine (other modules to wasmtime) keep functions in separate slots:
/// deploy-time work, which writes far more than a request (a compile of
/// hello world writes about 290 pages, a request about 32), in its own, and
/// requests in one of [`SLOT_GROUPS`] by function, or in the copy kept for
/// large functions ([`LARGE_GROUP`]). The copies map their
/// machine code and their memory image from one file
/// (`engine_image::EngineImage`), so they share those pages: measured, the
/// server's proportional set size is unchanged by them (RSS, which counts
/// a shared page once per mapping, is not). Measured in `benches/README.md`
/// (fifth session): hello world after the JSON API had run in the same
/// server, in ABBA order, 1.08-1.11× the requests per second with the two
/// in separate groups than with them sharing slots.
struct EngineCopy {
    pre: FunctionPre<StoreState>,
    /// `handler.handle`, `prepare` and `resume`, found and type-checked once
    /// (see [`HandlerExports`]): the bindings' own instantiation looks up and
    /// type-checks every export of the world, the compiler's too, for each
    /// instance: 9.4K of the 493.5K machine instructions of a hello-world
    /// request (callgrind, `benches/instructions.sh`).
    exports: HandlerExports,
}

impl EngineCopy {
    fn new(linker: &wasmtime::component::Linker<StoreState>, component: &wasmtime::component::Component) -> anyhow::Result<Self> {
        Ok(EngineCopy { pre: FunctionPre::new(linker.instantiate_pre(component)?)?, exports: HandlerExports::find(component)? })
    }
}

impl Sandbox {
    /// Builds the engine (or loads it from the cache) and pre-instantiates it.
    pub async fn new(config: SandboxConfig) -> anyhow::Result<Self> {
        let engine = wasmtime::Engine::new(&engine_config(&config))?;
        let linker = store::linker(&engine)?;
        let (image, first) =
            engine_image::load_or_build(&engine, &linker, StoreState::for_setup(&config), &config.cache_dir).await?;
        let setup = EngineCopy::new(&linker, &first)?;
        let serving = (0..=LARGE_GROUP)
            .map(|_| EngineCopy::new(&linker, &image.load(&engine)?))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let pristine = prepare_memory_images(&engine, &setup, &serving, &config).await?;
        let slots = Arc::new(Semaphore::new(config.max_instances as usize));
        Ok(Sandbox {
            _epoch: EpochTicker::start(engine.clone()),
            large_memory_bytes: pristine.memory_size() as u64 + LARGE_MEMORY_GROWTH,
            copies_replaced: Default::default(),
            source: Arc::new(CopySource {
                engine: engine.clone(),
                linker,
                image,
                config: config.clone(),
                slots: slots.clone(),
            }),
            slots,
            engine,
            serving: serving.into_iter().map(|copy| RwLock::new(Arc::new(copy))).collect(),
            setup,
            groups: Default::default(),
            pristine,
            config,
        })
    }

    /// The group `function`'s requests run in: a function seen for the first
    /// time joins the group with the fewest, and stays there for as long as
    /// the server runs unless its requests turn out to be large.
    pub fn slot_group(&self, function: &str) -> SlotGroup {
        self.groups.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).of(function)
    }

    /// Moves `function` (whose group is `group`) to the large group, and
    /// replaces the copy of the group it left with a fresh one: the old
    /// copy's slots hold what the function wrote, and wasmtime maps the
    /// image afresh into a slot whose module was dropped, once the requests
    /// still running in it end.
    fn move_to_large_group(&self, function: &str, group: &SlotGroup) {
        let Some(left) = self.groups.lock().unwrap_or_else(PoisonError::into_inner).move_to_large(group) else { return };
        tracing::info!(
            function,
            group = left,
            "a request grew the function's memory past the large-function threshold; \
             it moves to the large functions' group, and the group it left gets a fresh copy of the engine"
        );
        let (source, serving, replaced) = (self.source.clone(), self.serving.clone(), self.copies_replaced.clone());
        tokio::spawn(async move {
            match source.fresh_copy().await {
                Ok(copy) => {
                    *serving[left].write().unwrap_or_else(PoisonError::into_inner) = Arc::new(copy);
                    replaced.fetch_add(1, Ordering::Relaxed);
                }
                // The group keeps its copy, and its slots what they hold.
                Err(error) => tracing::warn!(group = left, error = %format!("{error:#}"), "a fresh copy of the engine failed to load"),
            }
        });
    }

    /// Functions moved to the large functions' group so far.
    pub fn large_functions(&self) -> usize {
        let groups = self.groups.lock().unwrap_or_else(PoisonError::into_inner);
        groups.by_function.values().filter(|group| group.index() == LARGE_GROUP).count()
    }

    /// Serving copies of the engine replaced by fresh ones so far.
    pub fn engine_copies_replaced(&self) -> u64 {
        self.copies_replaced.load(Ordering::Relaxed)
    }

    /// Instances running right now (request and compile slots in use).
    pub fn in_flight(&self) -> usize {
        (self.config.max_instances as usize).saturating_sub(self.slots.available_permits())
    }

    /// Compiles a function source to bytecode in a fresh, limited instance.
    pub async fn compile(&self, source: &str, limits: &Limits) -> Result<Execution<Vec<u8>>, Overloaded> {
        let source = source.to_owned();
        self.run(&self.setup, limits, Capabilities::default(), None, async move |store: &mut Store<StoreState>, instance: &Instance| {
            let function = edgefn_world::Function::new(&mut *store, instance)?;
            let compiled = function.edgefn_function_compiler().call_compile(&mut *store, &source).await?;
            Ok(compiled.map_err(|e| ExecutionError {
                line: e.line,
                column: e.column,
                ..ExecutionError::new("compile error", e.message)
            }))
        })
        .await
    }

    /// Evaluates a function's module in a fresh instance and keeps what that
    /// changed in its memory, for [`Sandbox::invoke`] to put back instead of
    /// evaluating the module again (see `module_state.rs`). `None` when the
    /// evaluation failed or called the host (logged, read a clock or
    /// randomness, a secret, the database or the network), which every
    /// request must then see for itself.
    pub async fn prepare(&self, bytecode: &[u8], limits: &Limits) -> Result<Option<Arc<ModuleState>>, Overloaded> {
        let exports = self.setup.exports;
        let execution = self
            .run(&self.setup, limits, Capabilities::default(), None, async move |store: &mut Store<StoreState>, instance: &Instance| {
                let prepare = exports.prepare(store, instance);
                let (prepared,) = prepare.call_async(&mut *store, (bytecode,)).await?;
                let state = store.data_mut();
                Ok(match prepared {
                    Ok(()) if !state.used_wasi() => Ok(state.saved_memory.take()),
                    Ok(()) => Ok(None),
                    Err(failure) => Err(ExecutionError::from_failure(failure)),
                })
            })
            .await?;
        // What a module's top level can reach of the host besides WASI:
        // console, the global fetch; the database (no `ctx` there) for good
        // measure.
        let database = &execution.database;
        let called_host = !execution.console.is_empty()
            || execution.outbound.requests > 0
            || database.queries + database.commits + database.rollbacks > 0;
        let Ok(Some((saved, stack))) = execution.result else { return Ok(None) };
        if called_host {
            return Ok(None);
        }
        let state = ModuleState::between(&self.pristine, &saved, stack)
            .filter(|state| state.memory_bytes() as u64 <= limits.memory_bytes);
        if let Some(state) = &state {
            tracing::debug!(bytes = state.len(), runs = state.runs(), memory_pages = state.memory_pages(), "module state prepared");
        }
        Ok(state.map(Arc::new))
    }

    /// Runs a deployed function's `fetch` for one request, with the
    /// capabilities granted to it: in an instance its prepared module state
    /// is put back into, when it has one.
    #[allow(clippy::too_many_arguments)]
    pub async fn invoke(
        &self,
        group: &SlotGroup,
        bytecode: Arc<[u8]>,
        module_state: Option<Arc<ModuleState>>,
        request: Request,
        invocation: Invocation,
        limits: &Limits,
        capabilities: Capabilities,
        trace: &InvocationTrace,
    ) -> Result<Execution<Response>, Overloaded> {
        let copy = self.serving[group.index()].read().unwrap_or_else(PoisonError::into_inner).clone();
        let exports = copy.exports;
        let (request, invocation) = (&request, &invocation);
        let execution = self.run(&copy, limits, capabilities, Some(trace), async move |store: &mut Store<StoreState>, instance: &Instance| {
            let bytecode: &[u8] = match module_state {
                Some(state) => {
                    let resume = exports.resume(store, instance);
                    let pages = state.memory_pages();
                    store.data_mut().module_state = Some(state);
                    resume.call_async(&mut *store, (pages,)).await?;
                    // The engine runs the module it was resumed with.
                    &[]
                }
                None => &bytecode,
            };
            let handle = exports.handle(store, instance);
            let (handled,) = handle.call_async(&mut *store, (bytecode, request, invocation)).await?;
            Ok(handled.map_err(ExecutionError::from_failure))
        })
        .await?;
        if execution.peak_memory_bytes >= self.large_memory_bytes {
            self.move_to_large_group(&invocation.function_name, group);
        }
        Ok(execution)
    }

    async fn run<T>(
        &self,
        copy: &EngineCopy,
        limits: &Limits,
        capabilities: Capabilities,
        trace: Option<&InvocationTrace>,
        call: impl AsyncFnOnce(&mut Store<StoreState>, &Instance) -> wasmtime::Result<Result<T, ExecutionError>>,
    ) -> Result<Execution<T>, Overloaded> {
        let queued = Instant::now();
        let _slot = tokio::time::timeout(self.config.queue_timeout, self.slots.acquire())
            .await
            .map_err(|_| Overloaded(self.config.max_instances))?
            .expect("the slot semaphore is never closed");
        let started = Instant::now();
        let started_wall = std::time::SystemTime::now();
        let mut timings = Timings { queue_us: micros(started - queued), ..Timings::default() };

        let mut store = Store::new(
            &self.engine,
            StoreState::new(MemoryLimiter::new(limits.memory_bytes), Console::new(self.config.console), capabilities),
        );
        store.limiter(|state| &mut state.limiter);
        store.set_fuel(limits.fuel).expect("fuel is enabled");
        let deadline = started + limits.deadline();
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            Ok(if Instant::now() >= deadline { UpdateDeadline::Interrupt } else { UpdateDeadline::Yield(1) })
        });

        // A host call that blocks (a guest sleeping, say) never reaches an
        // epoch check, so the deadline is also enforced from outside.
        let mut execute_span = None;
        let outcome = tokio::time::timeout_at(deadline.into(), async {
            let instance = copy.pre.instance_pre().instantiate_async(&mut store).await?;
            timings.instantiate_us = micros(started.elapsed());
            if let Some(trace) = trace {
                let (span, cx) = spans::started(trace, started_wall);
                store.data_mut().set_trace(&cx);
                execute_span = span;
            }
            call(&mut store, &instance).await
        })
        .await;
        timings.run_us = micros(started.elapsed()).saturating_sub(timings.instantiate_us);

        let fuel_consumed = limits.fuel.saturating_sub(store.get_fuel().unwrap_or(0));
        let state = store.into_data();
        let database = state.database.finish().await;
        let outbound = state.outbound.finish();
        let memory_hit = state.limiter.was_hit();
        let (outcome, result) = match outcome {
            Err(_elapsed) => (Outcome::Deadline, Err(deadline_error(limits))),
            Ok(Ok(Ok(value))) => (Outcome::Ok, Ok(value)),
            // An out-of-memory exception is the memory limit at work, whatever
            // shape it took inside the guest.
            Ok(Ok(Err(_))) | Ok(Err(_)) if memory_hit => (Outcome::MemoryLimit, Err(memory_error(limits))),
            Ok(Ok(Err(error))) => (Outcome::Error, Err(error)),
            Ok(Err(trap)) => classify_trap(&trap, limits),
        };
        if let Some(span) = execute_span {
            spans::finished(span, outcome, &result, fuel_consumed);
        }
        Ok(Execution {
            outcome,
            result,
            console: state.console.into_lines(),
            fuel_consumed,
            peak_memory_bytes: state.limiter.peak() as u64,
            timings,
            database,
            outbound,
        })
    }
}

/// Where the functions of `edgefn:function/handler` are among the
/// component's exports.
///
/// Invariant: the sandbox calls them only once [`HandlerExports::typecheck`]
/// has passed on an instance of the same component (`instantiate_at_startup`,
/// before the sandbox exists), so an instance's functions are typed without
/// checking them again.
#[derive(Clone, Copy)]
struct HandlerExports {
    handle: ComponentExportIndex,
    prepare: ComponentExportIndex,
    resume: ComponentExportIndex,
}

impl HandlerExports {
    fn find(component: &wasmtime::component::Component) -> anyhow::Result<Self> {
        const INTERFACE: &str = "edgefn:function/handler@0.1.0";
        let (_, interface) =
            component.get_export(None, INTERFACE).ok_or_else(|| anyhow::anyhow!("the engine does not export {INTERFACE}"))?;
        let function = |name: &str| {
            component
                .get_export(Some(&interface), name)
                .map(|(_, index)| index)
                .ok_or_else(|| anyhow::anyhow!("the engine's {INTERFACE} has no `{name}`"))
        };
        Ok(HandlerExports { handle: function("handle")?, prepare: function("prepare")?, resume: function("resume")? })
    }

    /// Fails unless the exports have the types the sandbox calls them with.
    fn typecheck(&self, store: &mut Store<StoreState>, instance: &Instance) -> wasmtime::Result<()> {
        instance.get_typed_func::<HandleParams<'_>, HandleResults>(&mut *store, self.handle)?;
        instance.get_typed_func::<PrepareParams<'_>, PrepareResults>(&mut *store, self.prepare)?;
        instance.get_typed_func::<ResumeParams, ()>(&mut *store, self.resume)?;
        Ok(())
    }

    fn handle<'a>(&self, store: &mut Store<StoreState>, instance: &Instance) -> TypedFunc<HandleParams<'a>, HandleResults> {
        // SAFETY: checked against these types (the type invariant).
        unsafe { unchecked_func(store, instance, self.handle) }
    }

    fn prepare<'a>(&self, store: &mut Store<StoreState>, instance: &Instance) -> TypedFunc<PrepareParams<'a>, PrepareResults> {
        // SAFETY: checked against these types (the type invariant).
        unsafe { unchecked_func(store, instance, self.prepare) }
    }

    fn resume(&self, store: &mut Store<StoreState>, instance: &Instance) -> TypedFunc<ResumeParams, ()> {
        // SAFETY: checked against these types (the type invariant).
        unsafe { unchecked_func(store, instance, self.resume) }
    }
}

/// The function `index` names in `instance`, typed without a check.
///
/// # Safety
///
/// `index` must name a function of `instance`'s component whose types are
/// `Params` and `Results`.
unsafe fn unchecked_func<Params, Results>(
    store: &mut Store<StoreState>,
    instance: &Instance,
    index: ComponentExportIndex,
) -> TypedFunc<Params, Results>
where
    Params: ComponentNamedList + Lower,
    Results: ComponentNamedList + Lift,
{
    let func = instance.get_func(store, index).expect("the export was found in this component at startup");
    // SAFETY: the caller's promise.
    unsafe { TypedFunc::new_unchecked(func) }
}

/// Instantiates every copy of the engine image once before the first
/// request, checks that the handler's exports have the types the sandbox
/// calls them with, and saves a fresh instance's memory (`handler.prepare`
/// with no module, in the setup copy: reading the whole memory maps in every
/// page of the slot, which each later reset of that slot would scan), which
/// module states are the difference from. The copies load the same bytes, so
/// their fresh memories are the same.
async fn prepare_memory_images(
    engine: &wasmtime::Engine,
    setup: &EngineCopy,
    serving: &[EngineCopy],
    config: &SandboxConfig,
) -> anyhow::Result<module_state::SavedMemory> {
    for copy in serving {
        drop(instantiate_at_startup(engine, copy, config).await?);
    }
    let (mut store, instance) = instantiate_at_startup(engine, setup, config).await?;
    store.data_mut().save_whole_memory = true;
    let prepare = setup.exports.prepare(&mut store, &instance);
    let (prepared,) = prepare.call_async(&mut store, (&[],)).await?;
    prepared.map_err(|failure| anyhow::anyhow!("saving a fresh instance's memory: {}", failure.message))?;
    let (pristine, _stack) = store
        .data_mut()
        .saved_memory
        .take()
        .ok_or_else(|| anyhow::anyhow!("the engine's handler.prepare did not call module-state.save"))?;
    Ok(pristine)
}

/// A first instance of `copy`, its handler's exports type-checked.
///
/// wasmtime builds a module's copy-on-write memory image on its first
/// instantiation, and sealing the memfd that holds it can fail with EBUSY
/// while the kernel still holds the freshly written pages (seen under load in
/// the test suite: "cannot add seals to the memfd"). Done here, a failure is
/// retried (wasmtime does not keep the error) instead of crashing a caller's
/// request, and the first request no longer pays for building the image.
async fn instantiate_at_startup(
    engine: &wasmtime::Engine,
    copy: &EngineCopy,
    config: &SandboxConfig,
) -> anyhow::Result<(Store<StoreState>, Instance)> {
    const ATTEMPTS: u32 = 5;
    for attempt in 1..=ATTEMPTS {
        let mut store = store::unmetered(engine, StoreState::for_setup(config))?;
        store.limiter(|state| &mut state.limiter);
        match copy.pre.instance_pre().instantiate_async(&mut store).await {
            Ok(instance) => {
                copy.exports.typecheck(&mut store, &instance)?;
                return Ok((store, instance));
            }
            Err(error) if attempt < ATTEMPTS => {
                tracing::warn!(attempt, error = %format!("{error:#}"), "preparing the engine's memory image failed; retrying");
                tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
            }
            Err(error) => return Err(anyhow::anyhow!("preparing the engine's memory image: {error:#}")),
        }
    }
    unreachable!("the last attempt returns")
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

fn deadline_error(limits: &Limits) -> ExecutionError {
    ExecutionError::new("deadline exceeded", format!("the function was still running at its {} ms deadline", limits.deadline_ms))
}

fn memory_error(limits: &Limits) -> ExecutionError {
    ExecutionError::new(
        "memory limit exceeded",
        format!("the function tried to use more than its {} MiB memory limit", limits.memory_bytes >> 20),
    )
}

fn classify_trap<T>(trap: &wasmtime::Error, limits: &Limits) -> (Outcome, Result<T, ExecutionError>) {
    match trap.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => (
            Outcome::FuelExhausted,
            Err(ExecutionError::new("fuel exhausted", format!("the function used up its fuel limit of {} units", limits.fuel))),
        ),
        Some(Trap::Interrupt) => (Outcome::Deadline, Err(deadline_error(limits))),
        Some(Trap::StackOverflow) => (
            Outcome::Error,
            Err(ExecutionError::new("stack overflow", "the function exhausted its call stack (runaway recursion?)".into())),
        ),
        other => {
            let detail = other.map(|t| t.to_string()).unwrap_or_else(|| format!("{trap:#}"));
            tracing::warn!(error = %format!("{trap:?}"), "function trapped");
            (Outcome::Error, Err(ExecutionError::new("trap", format!("the function's instance crashed: {detail}"))))
        }
    }
}

fn engine_config(config: &SandboxConfig) -> wasmtime::Config {
    let mut pool = wasmtime::PoolingAllocationConfig::new();
    // One extra slot so a deploy can compile while every request slot is busy.
    let instances = config.max_instances + 1;
    pool.total_component_instances(instances)
        .total_core_instances(instances * 16)
        .max_core_instances_per_component(16)
        .total_memories(instances * 2)
        .max_memories_per_component(2)
        .total_tables(instances * 16)
        .max_tables_per_component(16)
        .max_memory_size(usize::try_from(config.max_memory_bytes).unwrap_or(usize::MAX))
        // Reset a slot by rewriting only its dirty pages and keep them
        // resident, instead of dropping them and paying a copy-on-write fault
        // per page on the next request: QuickJS writes reference counts all
        // over the snapshot's heap, so that would be hundreds of faults.
        .linear_memory_keep_resident(KEEP_RESIDENT_BYTES)
        // The same for the slot's tables (QuickJS's function table is large)
        // and its async stack; measured: 5.1K -> 7.7K requests/s.
        .table_keep_resident(1 << 20)
        .async_stack_keep_resident(512 << 10)
        .pagemap_scan(wasmtime::Enabled::Auto);

    let mut wasm = wasmtime::Config::new();
    wasm.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool))
        .memory_init_cow(true)
        .consume_fuel(true)
        .epoch_interruption(true)
        .cranelift_opt_level(wasmtime::OptLevel::Speed);
    // For profiling the guest: `perf` then names the engine's Wasm functions
    // (QuickJS's interpreter, malloc...) instead of anonymous JIT addresses.
    if std::env::var_os("EDGEFN_PERFMAP").is_some() {
        wasm.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    wasm
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until dropped.
struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl EpochTicker {
    fn start(engine: wasmtime::Engine) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::Builder::new()
            .name("edgefn-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .expect("spawning the epoch thread");
        EpochTicker { stop }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn functions_are_spread_over_the_slot_groups_and_keep_theirs() {
        let mut groups = SlotGroups::default();
        let first: Vec<usize> = (0..SLOT_GROUPS).map(|i| groups.of(&format!("f{i}")).index()).collect();
        // One function per group before any group gets a second.
        assert_eq!(first, (0..SLOT_GROUPS).collect::<Vec<_>>());
        assert_eq!(groups.of("f1").index(), 1, "a function keeps its group");
        assert_eq!(groups.of("next").index(), 0, "then the groups fill up in turn");
        assert_eq!(groups.members.iter().sum::<usize>(), SLOT_GROUPS + 1);
    }

    #[test]
    fn a_large_function_leaves_its_group_once_and_every_holder_sees_it() {
        let mut groups = SlotGroups::default();
        let held = groups.of("big");
        groups.of("small");
        let again = groups.of("big");
        assert_eq!(groups.move_to_large(&again), Some(0), "the group it left");
        assert_eq!(held.index(), LARGE_GROUP, "a deployment holding the group follows the move");
        assert_eq!(groups.of("big").index(), LARGE_GROUP);
        assert_eq!(groups.move_to_large(&held), None, "a second large request moves nothing");
        assert_eq!(groups.members, [0, 1, 0, 0]);
        // The group it left has room again: the next function joins it.
        assert_eq!(groups.of("next").index(), 0);
    }
}
