//! The host bridge: the only file in kuryr6 that touches wasmtime.
//!
//! One `Engine` per `Host`, compiled components cached on disk and in
//! memory by sha256, a `PluginPre` (pre-instantiated component) per plugin,
//! and a fresh `Store` + instance for every call, thrown away afterwards: a
//! trap cannot leave state behind for the next call, and calls are
//! independent of each other.
//!
//! Limits of every call: a wall-clock deadline (epoch interruption, driven
//! by a ticker thread), a memory cap on all the store's memories together
//! (`Limiter`, growing past it traps), table elements, instances, WASI
//! resources, fuel (always metered, so `kuryr6 plugin test` can report it;
//! a budget only when the pipeline sets one), and the size of every value
//! returned (`Bounded`, measured before it is copied; limits in
//! boundary.rs).
//!
//! Contract versions: the version a component was built against is read
//! from its export names before it is instantiated (`abi`), and its hooks
//! are looked up under that version's names. Every version's functions
//! have the same types, so one set of typed calls serves them all; what a
//! later minor added (`meta.version`, the `log` import) is used only with
//! plugins built against it. The `log` import is linked for everyone: a
//! 0.1.0 plugin does not import it, so it never sees it.
//!
//! The sandbox: WASI 0.2 is linked because a Rust or Python guest imports it
//! even when it does no I/O, but the context is empty: no preopened
//! directories (so no filesystem at all), no environment, no arguments,
//! stdin at EOF, sockets and name lookup refused. stdout and stderr go to one
//! memory pipe whose contents are attached to a crash report. Clocks are
//! frozen and random numbers come from a fixed seed, so the same plugin with
//! the same input gives byte-identical output. Time is virtual: the
//! monotonic clock stays at 0 and a sleep returns at once, because a guest
//! blocked in a host sleep could not be interrupted by the epoch deadline.

use super::abi::{self, Contract, Detected};
use super::boundary::{self, Oversized, bounded};
use super::error::PluginError;
use super::{Facts, Hook, Limits, PluginInfo, ResourceKind, Severity, SiteInput, Violation};
use rand::SeedableRng;
use rand::rngs::StdRng;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use wasmtime::component::__internal::{CanonicalAbiInfo, InstanceType, InterfaceType, LiftContext};
use wasmtime::component::{
    Component, ComponentExportIndex, ComponentType, HasData, Instance, InstancePre, Lift, Linker,
    Resource, ResourceTable, TypedFunc, WasmStr,
};
use wasmtime::{Config, Engine, OptLevel, ResourceLimiter, Store, StoreContextMut, ValRaw};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::p2::{DynPollable, Pollable};
use wasmtime_wasi::{
    HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView,
};

mod wit {
    wasmtime::component::bindgen!({
        world: "plugin",
        path: "../sdk/wit",
    });
}

use wit::kuryr6::plugin::log as wlog;
use wit::kuryr6::plugin::types as wt;

/// Resolution of the wall-clock deadline: the ticker advances the engine's
/// epoch this often, so a deadline fires at most one tick late.
const TICK: Duration = Duration::from_millis(10);
/// How much a guest may print (stdout and stderr together) per call.
const OUTPUT_CAP: usize = 64 * 1024;
/// Largest single request for random bytes; guests ask for a few bytes.
const MAX_RANDOM_BYTES: u64 = 1024 * 1024;
/// The frozen wall clock: 2000-01-01T00:00:00Z.
const FROZEN_WALL: Duration = Duration::from_secs(946_684_800);
/// Seeds of the guests' random streams. Fixed, so output is reproducible;
/// nothing a plugin does may depend on unpredictable randomness.
const SECURE_SEED: u64 = 0x6b75_7279_7236_0001;
const INSECURE_SEED: u64 = 0x6b75_7279_7236_0002;
const INSECURE_SEED_128: u128 = 0x6b75_7279_7236_0003;

/// Where a loaded plugin's compiled code came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Compiled with Cranelift now (and written to the disk cache).
    Compiled,
    /// Loaded from the disk cache.
    DiskCache,
    /// Already loaded by this process.
    Memory,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Origin::Compiled => "compiled",
            Origin::DiskCache => "disk cache",
            Origin::Memory => "memory",
        })
    }
}

/// Where compiled plugins are cached, and whether at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheDir {
    /// `$KURYR6_PLUGIN_CACHE`, else `$XDG_CACHE_HOME/kuryr6/plugins`, else
    /// `~/.cache/kuryr6/plugins`; none if none of them is set.
    FromEnv,
    At(PathBuf),
    Disabled,
}

/// A plugin host: one engine, its ticker, its caches. Cheap to share
/// (`Sync`); the process normally uses `Host::global`.
pub struct Host {
    engine: Engine,
    linker: Linker<Ctx>,
    cache_dir: Option<PathBuf>,
    /// The opened cache; `None` when disabled or not trustworthy (then
    /// every plugin is compiled, see cache.rs).
    cache: Option<super::cache::Cache>,
    /// Digest of everything besides the plugin that decides whether a
    /// compiled artefact is usable: wasmtime's version and engine config.
    engine_key: String,
    loaded: Mutex<HashMap<String, Arc<Plugin>>>,
    _ticker: Ticker,
}

/// A loaded, ABI-checked plugin, ready to be called any number of times.
pub struct Plugin {
    /// Lowercase hex sha256 of the `.wasm` file.
    pub sha256: String,
    pub info: PluginInfo,
    engine: Engine,
    pre: InstancePre<Ctx>,
    exports: Exports,
}

/// The hook functions, looked up once per component. Hooks are called
/// through these typed functions rather than the generated bindings so
/// that answers are lifted as `Bounded`/`BoundedList`: measured before the
/// host copies anything.
struct Exports {
    describe: ComponentExportIndex,
    /// `meta.version`, for contracts that have it (0.2.0 on).
    version: Option<ComponentExportIndex>,
    transform: ComponentExportIndex,
    name: ComponentExportIndex,
    check: ComponentExportIndex,
}

/// The hooks' typed functions; one definition each, used to type-check a
/// plugin's exports when it is loaded and to call them.
type TransformFn<'a> =
    TypedFunc<(&'a [(String, String)], &'a str), (Answer<{ boundary::MAX_PLAN_JSON }>,)>;
type NameFn<'a> = TypedFunc<
    (wt::ResourceKind, &'a str, &'a [(String, String)]),
    (Answer<{ boundary::MAX_NAME }>,),
>;
type CheckFn<'a> = TypedFunc<
    (&'a [wt::Site],),
    (
        Result<
            BoundedList<RawViolation, { boundary::MAX_VIOLATIONS }>,
            Bounded<{ boundary::MAX_MESSAGE }>,
        >,
    ),
>;

/// `info` with its strings and list bounded (see `Bounded`).
#[derive(ComponentType, Lift)]
#[component(record)]
struct RawInfo {
    #[component(name = "abi-version")]
    abi_version: u32,
    name: Bounded<{ boundary::MAX_PLUGIN_NAME }>,
    hooks: BoundedList<wt::Hook, { boundary::MAX_HOOKS }>,
}

/// A `violation` with every string bounded (see `Exports`).
#[derive(ComponentType, Lift)]
#[component(record)]
struct RawViolation {
    severity: wt::Severity,
    code: Bounded<{ boundary::MAX_VIOLATION_CODE }>,
    message: Bounded<{ boundary::MAX_VIOLATION_MESSAGE }>,
    site: Bounded<{ boundary::MAX_VIOLATION_PLACE }>,
    step: Bounded<{ boundary::MAX_VIOLATION_PLACE }>,
}

/// A hook's `result<string, string>`, both sides bounded.
type Answer<const N: usize> = Result<Bounded<N>, Bounded<{ boundary::MAX_MESSAGE }>>;

/// A WIT `string` of at most `N` code units (bytes for a UTF-8 guest).
///
/// Why not `String` or `WasmStr`: lifting a `String` copies it before
/// anyone can look at its length, and a list of records may point all its
/// strings at the same guest bytes, so copies are not bounded by the
/// guest's memory; a `WasmStr` can be measured without a copy, but only
/// after the call, when the guest's post-return has already freed (and its
/// allocator overwritten) the bytes. This type reads the length from the
/// canonical ABI's (pointer, length) pair during lifting, refuses with
/// `Oversized` if it is too long, and only then lets wasmtime copy the
/// string. It uses wasmtime's hidden lifting API, which is why wasmtime is
/// pinned to one exact version.
struct Bounded<const N: usize>(String);

/// A WIT `list<T>` of at most `N` elements, checked the same way before
/// anything is allocated for it.
struct BoundedList<T, const N: usize>(Vec<T>);

/// Strings and lists are a (pointer, length) pair, flat or in memory.
fn length_from_flat(src: &[ValRaw; 2]) -> usize {
    src[1].get_u32() as usize
}

fn length_from_memory(bytes: &[u8]) -> usize {
    bytes
        .get(4..8)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(|b| u32::from_le_bytes(b) as usize)
        .unwrap_or(usize::MAX)
}

/// The canonical ABI's latin1+utf16 encoding tags a length's top bit.
const UTF16_TAG: usize = 1 << 31;

fn check_length(what: &'static str, len: usize, limit: usize) -> wasmtime::Result<()> {
    let len = if len == usize::MAX {
        len
    } else {
        len & !UTF16_TAG
    };
    bounded(what, len, limit).map_err(wasmtime::Error::new)
}

// SAFETY (both impls): the type, ABI and flattening are exactly those of
// the wrapped `String`/`Vec<T>`, and lifting delegates to their impls after
// a length check that reads only the already-flattened pair.
unsafe impl<const N: usize> ComponentType for Bounded<N> {
    type Lower = <String as ComponentType>::Lower;
    const ABI: CanonicalAbiInfo = <String as ComponentType>::ABI;

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> wasmtime::Result<()> {
        <String as ComponentType>::typecheck(ty, types)
    }
}

unsafe impl<const N: usize> Lift for Bounded<N> {
    fn linear_lift_from_flat(
        cx: &mut LiftContext<'_>,
        ty: InterfaceType,
        src: &Self::Lower,
    ) -> wasmtime::Result<Self> {
        check_length("returned string", length_from_flat(src), N)?;
        <String as Lift>::linear_lift_from_flat(cx, ty, src).map(Bounded)
    }

    fn linear_lift_from_memory(
        cx: &mut LiftContext<'_>,
        ty: InterfaceType,
        bytes: &[u8],
    ) -> wasmtime::Result<Self> {
        check_length("returned string", length_from_memory(bytes), N)?;
        <String as Lift>::linear_lift_from_memory(cx, ty, bytes).map(Bounded)
    }
}

unsafe impl<T: ComponentType, const N: usize> ComponentType for BoundedList<T, N> {
    type Lower = <Vec<T> as ComponentType>::Lower;
    const ABI: CanonicalAbiInfo = <Vec<T> as ComponentType>::ABI;

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> wasmtime::Result<()> {
        <Vec<T> as ComponentType>::typecheck(ty, types)
    }
}

unsafe impl<T: Lift, const N: usize> Lift for BoundedList<T, N> {
    fn linear_lift_from_flat(
        cx: &mut LiftContext<'_>,
        ty: InterfaceType,
        src: &Self::Lower,
    ) -> wasmtime::Result<Self> {
        check_length("returned list", length_from_flat(src), N)?;
        <Vec<T> as Lift>::linear_lift_from_flat(cx, ty, src).map(BoundedList)
    }

    fn linear_lift_from_memory(
        cx: &mut LiftContext<'_>,
        ty: InterfaceType,
        bytes: &[u8],
    ) -> wasmtime::Result<Self> {
        check_length("returned list", length_from_memory(bytes), N)?;
        <Vec<T> as Lift>::linear_lift_from_memory(cx, ty, bytes).map(BoundedList)
    }
}

/// A log message (the `log` import's parameter), left in guest memory,
/// with its length in code units as the canonical ABI passed it: read
/// before the text is, so an oversized message is never decoded (a UTF-16
/// guest's would be transcoded into a new host string).
struct LogText {
    text: WasmStr,
    units: usize,
}

// SAFETY (both impls): the type, ABI and flattening are exactly `WasmStr`'s,
// and lifting delegates to it after reading only the flattened length.
unsafe impl ComponentType for LogText {
    type Lower = <WasmStr as ComponentType>::Lower;
    const ABI: CanonicalAbiInfo = <WasmStr as ComponentType>::ABI;

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> wasmtime::Result<()> {
        <WasmStr as ComponentType>::typecheck(ty, types)
    }
}

unsafe impl Lift for LogText {
    fn linear_lift_from_flat(
        cx: &mut LiftContext<'_>,
        ty: InterfaceType,
        src: &Self::Lower,
    ) -> wasmtime::Result<Self> {
        Ok(LogText {
            units: length_from_flat(src) & !UTF16_TAG,
            text: <WasmStr as Lift>::linear_lift_from_flat(cx, ty, src)?,
        })
    }

    fn linear_lift_from_memory(
        cx: &mut LiftContext<'_>,
        ty: InterfaceType,
        bytes: &[u8],
    ) -> wasmtime::Result<Self> {
        Ok(LogText {
            units: length_from_memory(bytes) & !UTF16_TAG,
            text: <WasmStr as Lift>::linear_lift_from_memory(cx, ty, bytes)?,
        })
    }
}

/// Result of `Host::load`.
pub struct LoadedPlugin {
    pub plugin: Arc<Plugin>,
    pub origin: Origin,
    /// Wall time of the load (compile or cache read, link, describe).
    pub elapsed: Duration,
}

/// What one call returned, and what it cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Called<T> {
    pub value: T,
    /// Fresh store + instantiation + the call itself.
    pub elapsed: Duration,
    /// Fuel consumed (about one unit per WebAssembly instruction).
    pub fuel: u64,
}

/// Hex sha256 of a plugin file's bytes: what `[[plugin]] sha256` pins.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Host {
    /// Creates an engine and starts its epoch ticker.
    pub fn new(cache: CacheDir) -> Result<Host, String> {
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .consume_fuel(true)
            .parallel_compilation(true)
            .cranelift_opt_level(OptLevel::Speed);
        // On-demand instance allocation on purpose: the pooling allocator
        // made a warm call 10 µs cheaper but engine start-up 3 ms dearer,
        // and a kuryr6 process makes a handful of calls.
        let engine = Engine::new(&config).map_err(|e| format!("cannot start wasmtime: {e:#}"))?;

        let mut linker: Linker<Ctx> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|e| format!("cannot link WASI: {e:#}"))?;
        // Replace the monotonic clock with virtual time (see module docs).
        linker.allow_shadowing(true);
        wasmtime_wasi::p2::bindings::clocks::monotonic_clock::add_to_linker::<Ctx, VirtualTime>(
            &mut linker,
            |ctx| VirtualClock(&mut ctx.table),
        )
        .map_err(|e| format!("cannot link the virtual clock: {e:#}"))?;
        linker.allow_shadowing(false);
        link_log(&mut linker).map_err(|e| format!("cannot link the plugin log: {e:#}"))?;

        let mut hasher = DigestHasher(Sha256::new());
        "wasmtime-48.0.8".hash(&mut hasher);
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let engine_key = hex(&hasher.0.finalize())[..16].to_string();

        let cache_dir = match cache {
            CacheDir::FromEnv => super::cache::default_dir(),
            CacheDir::At(p) => Some(p),
            CacheDir::Disabled => None,
        };
        let cache = cache_dir
            .as_deref()
            .and_then(|dir| match super::cache::Cache::open(dir) {
                Ok(c) => Some(c),
                Err(miss) => {
                    tracing::debug!("plugin cache off, plugins will be compiled: {miss}");
                    None
                }
            });
        Ok(Host {
            _ticker: Ticker::start(engine.clone())?,
            engine,
            linker,
            cache_dir,
            cache,
            engine_key,
            loaded: Mutex::new(HashMap::new()),
        })
    }

    /// The process-wide host, created on first use (only pipelines that
    /// name a plugin pay for it).
    pub fn global() -> Result<&'static Host, String> {
        static HOST: std::sync::OnceLock<Result<Host, String>> = std::sync::OnceLock::new();
        HOST.get_or_init(|| Host::new(CacheDir::FromEnv))
            .as_ref()
            .map_err(Clone::clone)
    }

    pub fn cache_dir(&self) -> Option<&Path> {
        self.cache_dir.as_deref()
    }

    /// Loads a plugin from its bytes: in-memory cache, else disk cache, else
    /// compile; then link against the sandbox and check the ABI (one
    /// `describe` call under `limits`). `label` names the plugin in errors.
    pub fn load(
        &self,
        label: &str,
        bytes: &[u8],
        limits: &Limits,
    ) -> Result<LoadedPlugin, PluginError> {
        self.load_hashed(label, bytes, sha256_hex(bytes), limits)
    }

    /// `load` for bytes whose sha256 the caller already computed (hashing
    /// a plugin costs ~0.6 ms/MB; a pinned load must not pay it twice).
    pub fn load_hashed(
        &self,
        label: &str,
        bytes: &[u8],
        sha256: String,
        limits: &Limits,
    ) -> Result<LoadedPlugin, PluginError> {
        let start = Instant::now();
        if let Some(p) = self.lock_loaded().get(&sha256) {
            return Ok(LoadedPlugin {
                plugin: p.clone(),
                origin: Origin::Memory,
                elapsed: start.elapsed(),
            });
        }
        let (component, origin) = self.component(label, &sha256, bytes)?;
        let contract = self.contract(label, &component)?;
        let load_err = |message: String| PluginError::Load {
            plugin: label.to_string(),
            message,
        };
        let pre = self.linker.instantiate_pre(&component).map_err(|e| {
            load_err(format!(
                "imports something the sandbox does not provide: {e:#}"
            ))
        })?;
        let export = |iface: &str, func: &str| {
            let name = contract.export(iface);
            component
                .get_export_index(None, &name)
                .and_then(|i| component.get_export_index(Some(&i), func))
                .ok_or_else(|| load_err(format!("lacks the export {name}#{func}")))
        };
        let exports = Exports {
            describe: export("meta", "describe")?,
            version: if contract.has_plugin_version() {
                Some(export("meta", "version")?)
            } else {
                None
            },
            transform: export("plan", "transform")?,
            name: export("naming", "name")?,
            check: export("policy", "check")?,
        };
        let mut plugin = Plugin {
            sha256: sha256.clone(),
            info: PluginInfo {
                name: String::new(),
                hooks: Vec::new(),
                contract: contract.to_string(),
                version: None,
            },
            engine: self.engine.clone(),
            pre,
            exports,
        };
        let described = plugin.call(label, "describe", limits, |store, instance| {
            // Every hook's type is checked now, so a plugin whose exports
            // do not match its contract fails here, not in the middle of a
            // run.
            let mismatch = |export: &str, e: wasmtime::Error| {
                wasmtime::Error::new(ExportMismatch(format!("{contract}#{export}: {e:#}")))
            };
            let _: TransformFn = instance
                .get_typed_func(&mut *store, plugin.exports.transform)
                .map_err(|e| mismatch("plan.transform", e))?;
            let _: NameFn = instance
                .get_typed_func(&mut *store, plugin.exports.name)
                .map_err(|e| mismatch("naming.name", e))?;
            let _: CheckFn = instance
                .get_typed_func(&mut *store, plugin.exports.check)
                .map_err(|e| mismatch("policy.check", e))?;
            let describe = instance
                .get_typed_func::<(), (RawInfo,)>(&mut *store, plugin.exports.describe)
                .map_err(|e| mismatch("meta.describe", e))?;
            let (info,) = describe.call(&mut *store, ())?;
            let version = match plugin.exports.version {
                Some(index) => {
                    let f = instance
                        .get_typed_func::<(), (Bounded<{ boundary::MAX_PLUGIN_VERSION }>,)>(
                            &mut *store,
                            index,
                        )
                        .map_err(|e| mismatch("meta.version", e))?;
                    let (v,) = f.call(&mut *store, ())?;
                    Some(v.0)
                }
                None => None,
            };
            Ok((info, version))
        });
        let (info, version) = described?.value;
        check_described(label, &contract.to_string(), &info, version.as_deref())?;
        plugin.info = PluginInfo {
            name: info.name.0,
            hooks: info
                .hooks
                .0
                .iter()
                .map(|h| match h {
                    wt::Hook::Plan => Hook::Plan,
                    wt::Hook::Naming => Hook::Naming,
                    wt::Hook::Policy => Hook::Policy,
                })
                .collect(),
            contract: contract.to_string(),
            version,
        };
        let plugin = Arc::new(plugin);
        self.lock_loaded().insert(sha256, plugin.clone());
        Ok(LoadedPlugin {
            plugin,
            origin,
            elapsed: start.elapsed(),
        })
    }

    /// Reads and loads a plugin file; with `pin`, refuses a file whose
    /// sha256 differs before compiling anything.
    pub fn load_file(
        &self,
        label: &str,
        path: &Path,
        pin: Option<&str>,
        limits: &Limits,
    ) -> Result<LoadedPlugin, PluginError> {
        let bytes = std::fs::read(path).map_err(|source| PluginError::Io {
            plugin: label.to_string(),
            path: path.to_path_buf(),
            source,
        })?;
        let actual = sha256_hex(&bytes);
        if let Some(pin) = pin
            && !actual.eq_ignore_ascii_case(pin.trim())
        {
            return Err(PluginError::HashMismatch {
                plugin: label.to_string(),
                expected: Some(pin.trim().to_string()),
                actual,
            });
        }
        self.load_hashed(label, &bytes, actual, limits)
    }

    fn lock_loaded(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Plugin>>> {
        // A panic while holding the lock cannot leave the map inconsistent
        // (inserts are single calls), so a poisoned lock is still usable.
        self.loaded.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The compiled component: from the disk cache when an authenticated
    /// artefact is there, else compiled now and cached (best effort: a
    /// cache that cannot be written only costs time).
    fn component(
        &self,
        label: &str,
        sha256: &str,
        bytes: &[u8],
    ) -> Result<(Component, Origin), PluginError> {
        if let Some(cache) = &self.cache {
            match cache.read(sha256, &self.engine_key) {
                // SAFETY: `deserialize` runs native code from these bytes.
                // They are the bytes whose HMAC under this cache's private
                // key just verified for this plugin's sha256 and this
                // engine (cache.rs): an artefact this user's kuryr6 wrote
                // with `serialize` below. They are checked and used from
                // the same buffer, so no swap can come between.
                Ok(artefact) => match unsafe { Component::deserialize(&self.engine, &artefact) } {
                    Ok(c) => return Ok((c, Origin::DiskCache)),
                    Err(e) => {
                        tracing::debug!("cached plugin {label} is unusable, compiling again: {e:#}")
                    }
                },
                Err(super::cache::Miss::Absent) => {}
                Err(miss) => tracing::debug!("plugin {label}: {miss}; compiling again"),
            }
        }
        let component = Component::new(&self.engine, bytes).map_err(|e| PluginError::Load {
            plugin: label.to_string(),
            message: format!("is not a usable WebAssembly component: {e:#}"),
        })?;
        if let Some(cache) = &self.cache {
            match component.serialize() {
                Ok(compiled) => {
                    if let Err(e) = cache.write(sha256, &self.engine_key, &compiled) {
                        tracing::warn!(
                            "cannot cache plugin {label} in {}: {e}",
                            cache.dir().display()
                        );
                    }
                }
                Err(e) => tracing::warn!("cannot serialize plugin {label}: {e:#}"),
            }
        }
        Ok((component, Origin::Compiled))
    }

    /// The contract version the component was built against, from its
    /// export names (before linking, which would fail less clearly).
    fn contract(&self, label: &str, component: &Component) -> Result<Contract, PluginError> {
        let ty = component.component_type();
        let names: Vec<String> = ty
            .exports(&self.engine)
            .map(|(name, _)| name.to_string())
            .collect();
        match abi::detect(names.iter().map(String::as_str)) {
            Detected::Supported(c) => Ok(c),
            Detected::Unsupported(version) => Err(PluginError::AbiMismatch {
                plugin: label.to_string(),
                expected: abi::supported(),
                found: format!("kuryr6:plugin@{version}"),
            }),
            Detected::NotAPlugin => Err(PluginError::Load {
                plugin: label.to_string(),
                message: format!(
                    "is not a kuryr6 plugin: it exports no kuryr6:plugin/meta interface (exports: {}); this kuryr6 runs plugins built against {}",
                    if names.is_empty() {
                        "none".to_string()
                    } else {
                        names.join(", ")
                    },
                    abi::supported()
                ),
            }),
        }
    }
}

impl Plugin {
    /// `plan` hook: facts and plan JSON in, plan JSON out (at most
    /// `boundary::MAX_PLAN_JSON` bytes, measured before it is copied).
    pub fn call_plan(
        &self,
        label: &str,
        limits: &Limits,
        facts: &Facts,
        plan_json: &str,
    ) -> Result<Called<String>, PluginError> {
        let r = self.call(label, Hook::Plan.as_str(), limits, |store, instance| {
            let f: TransformFn = instance.get_typed_func(&mut *store, self.exports.transform)?;
            let (answer,) = f.call(&mut *store, (&facts.0, plan_json))?;
            Ok(answer.map(|s| s.0).map_err(|m| m.0))
        })?;
        refused(label, Hook::Plan, r)
    }

    /// `naming` hook: one step's kind and current name in, its name out.
    pub fn call_naming(
        &self,
        label: &str,
        limits: &Limits,
        kind: ResourceKind,
        default_name: &str,
        context: &Facts,
    ) -> Result<Called<String>, PluginError> {
        let kind = match kind {
            ResourceKind::Network => wt::ResourceKind::Network,
            ResourceKind::Subnet => wt::ResourceKind::Subnet,
            ResourceKind::Router => wt::ResourceKind::Router,
            ResourceKind::SecurityGroup => wt::ResourceKind::SecurityGroup,
            ResourceKind::Loadbalancer => wt::ResourceKind::Loadbalancer,
            ResourceKind::Emit => wt::ResourceKind::Emit,
        };
        let r = self.call(label, Hook::Naming.as_str(), limits, |store, instance| {
            let f: NameFn = instance.get_typed_func(&mut *store, self.exports.name)?;
            let (answer,) = f.call(&mut *store, (kind, default_name, &context.0))?;
            Ok(answer.map(|s| s.0).map_err(|m| m.0))
        })?;
        refused(label, Hook::Naming, r)
    }

    /// `policy` hook: sites in, violations out (at most
    /// `boundary::MAX_VIOLATIONS`, each string bounded, all measured before
    /// any is copied).
    pub fn call_policy(
        &self,
        label: &str,
        limits: &Limits,
        sites: &[SiteInput],
    ) -> Result<Called<Vec<Violation>>, PluginError> {
        let sites: Vec<wt::Site> = sites
            .iter()
            .map(|s| wt::Site {
                name: s.name.clone(),
                facts: s.facts.0.clone(),
                plan: s.plan_json.clone(),
            })
            .collect();
        let r = self.call(label, Hook::Policy.as_str(), limits, |store, instance| {
            let f: CheckFn = instance.get_typed_func(&mut *store, self.exports.check)?;
            let (answer,) = f.call(&mut *store, (&sites,))?;
            Ok(answer.map_err(|m| m.0).map(|list| {
                list.0
                    .into_iter()
                    .map(|v| Violation {
                        severity: match v.severity {
                            wt::Severity::Error => Severity::Error,
                            wt::Severity::Warning => Severity::Warning,
                        },
                        code: v.code.0,
                        message: v.message.0,
                        site: v.site.0,
                        step: v.step.0,
                    })
                    .collect()
            }))
        })?;
        refused(label, Hook::Policy, r)
    }

    /// Runs `f` on a fresh instance in a fresh store under `limits`, and
    /// turns every way it can fail into a named `PluginError`.
    fn call<R>(
        &self,
        label: &str,
        hook: &'static str,
        limits: &Limits,
        f: impl FnOnce(&mut Store<Ctx>, &Instance) -> wasmtime::Result<R>,
    ) -> Result<Called<R>, PluginError> {
        let output = MemoryOutputPipe::new(OUTPUT_CAP);
        let mut store = Store::new(
            &self.engine,
            Ctx::new(&output, limits.memory_bytes(), label, hook),
        );
        store.limiter(|ctx| &mut ctx.limiter);
        let budget = limits.fuel.unwrap_or(u64::MAX);
        let deadline_ticks = limits.deadline.as_nanos().div_ceil(TICK.as_nanos()) as u64 + 1;
        let start = Instant::now();
        let result = store
            .set_fuel(budget)
            .and_then(|()| {
                store.set_epoch_deadline(deadline_ticks);
                store.epoch_deadline_trap();
                self.pre.instantiate(&mut store)
            })
            .and_then(|instance| f(&mut store, &instance));
        let elapsed = start.elapsed();
        let fuel = budget.saturating_sub(store.get_fuel().unwrap_or(0));
        store.data().log.report_dropped();
        match result {
            Ok(value) => Ok(Called {
                value,
                elapsed,
                fuel,
            }),
            Err(e) => Err(classify(e, &store, &output, label, hook, limits)),
        }
    }
}

/// A plugin's own `Err(message)` becomes `Refused`.
fn refused<T>(
    label: &str,
    hook: Hook,
    r: Called<Result<T, String>>,
) -> Result<Called<T>, PluginError> {
    match r.value {
        Ok(value) => Ok(Called {
            value,
            elapsed: r.elapsed,
            fuel: r.fuel,
        }),
        Err(message) => Err(PluginError::Refused {
            plugin: label.to_string(),
            hook: hook.as_str(),
            message,
        }),
    }
}

/// An export whose type is not the one its contract version declares:
/// found while loading, reported as `Load`, not as a crash.
#[derive(Debug)]
struct ExportMismatch(String);

impl std::fmt::Display for ExportMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ExportMismatch {}

fn classify(
    err: wasmtime::Error,
    store: &Store<Ctx>,
    output: &MemoryOutputPipe,
    label: &str,
    hook: &'static str,
    limits: &Limits,
) -> PluginError {
    let plugin = label.to_string();
    if let Some(m) = err.downcast_ref::<ExportMismatch>() {
        return PluginError::Load {
            plugin,
            message: format!("an export does not have its contract's type: {m}"),
        };
    }
    if let Some(o) = err.downcast_ref::<Oversized>() {
        return PluginError::Oversize {
            plugin,
            hook,
            what: o.what.to_string(),
            size: o.size,
            limit: o.limit,
        };
    }
    if let Some(wasmtime::component::ResourceTableError::Full) =
        err.downcast_ref::<wasmtime::component::ResourceTableError>()
    {
        return PluginError::Oversize {
            plugin,
            hook,
            what: "WASI resource table".into(),
            size: boundary::MAX_WASI_RESOURCES + 1,
            limit: boundary::MAX_WASI_RESOURCES,
        };
    }
    if let Some(o) = store.data().limiter.tables_exceeded.clone() {
        return PluginError::Oversize {
            plugin,
            hook,
            what: o.what.to_string(),
            size: o.size,
            limit: o.limit,
        };
    }
    if store.data().limiter.memory_exceeded {
        return PluginError::Memory {
            plugin,
            hook,
            limit_mib: limits.memory_mib,
        };
    }
    match err.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::Interrupt) => PluginError::Deadline {
            plugin,
            hook,
            deadline: limits.deadline,
        },
        Some(wasmtime::Trap::OutOfFuel) => PluginError::Fuel {
            plugin,
            hook,
            fuel: limits.fuel.unwrap_or(u64::MAX),
        },
        _ => {
            let stderr = String::from_utf8_lossy(&output.contents())
                .trim()
                .to_string();
            let backtrace = err
                .downcast_ref::<wasmtime::WasmBacktrace>()
                .map(|b| b.to_string())
                .unwrap_or_default();
            // The trap (or a host error such as a guest's exit) without the
            // backtrace context wasmtime wraps it in.
            let message = match err.downcast_ref::<wasmtime::Trap>() {
                Some(trap) => trap.to_string(),
                None => err.root_cause().to_string(),
            };
            PluginError::Trap {
                plugin,
                hook,
                message,
                stderr,
                backtrace,
            }
        }
    }
}

/// Per-call store data.
struct Ctx {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: Limiter,
    log: PluginLog,
}

/// The `log` import's state for one call: who is logging, and how many
/// lines it has written.
struct PluginLog {
    plugin: String,
    hook: &'static str,
    lines: usize,
    dropped: usize,
}

impl PluginLog {
    fn write(&mut self, level: wlog::Level, message: &str) {
        if self.lines >= boundary::MAX_LOG_LINES {
            self.dropped += 1;
            return;
        }
        self.lines += 1;
        let (plugin, hook) = (self.plugin.as_str(), self.hook);
        let line = boundary::log_line(message);
        // One target for every plugin line, so `RUST_LOG=kuryr6::plugin=…`
        // selects them; the plugin and hook are fields of the event.
        match level {
            wlog::Level::Debug => {
                tracing::debug!(target: "kuryr6::plugin", plugin, hook, "{line}")
            }
            wlog::Level::Info => tracing::info!(target: "kuryr6::plugin", plugin, hook, "{line}"),
            wlog::Level::Warn => tracing::warn!(target: "kuryr6::plugin", plugin, hook, "{line}"),
            wlog::Level::Error => {
                tracing::error!(target: "kuryr6::plugin", plugin, hook, "{line}")
            }
        }
    }

    fn report_dropped(&self) {
        if self.dropped > 0 {
            tracing::warn!(
                target: "kuryr6::plugin",
                plugin = self.plugin.as_str(),
                hook = self.hook,
                "{} more log lines dropped (at most {} per call)",
                self.dropped,
                boundary::MAX_LOG_LINES
            );
        }
    }
}

/// Provides `kuryr6:plugin/log` (contract 0.2.0). The message is read in
/// place from guest memory (`LogText`; a UTF-8 guest's string is borrowed,
/// not copied) and only its first `MAX_LOG_MESSAGE` bytes are kept; one
/// longer than `MAX_LOG_READ` code units is not decoded at all.
fn link_log(linker: &mut Linker<Ctx>) -> wasmtime::Result<()> {
    let mut log = linker.instance(&format!("kuryr6:plugin/log@{}", abi::NEWEST))?;
    log.func_wrap(
        "log",
        |mut cx: StoreContextMut<'_, Ctx>, (level, message): (wlog::Level, LogText)| {
            // Past the line limit nothing is read: a flood costs a count.
            if cx.data().log.lines >= boundary::MAX_LOG_LINES {
                cx.data_mut().log.dropped += 1;
                return Ok(());
            }
            if message.units > boundary::MAX_LOG_READ {
                let note = format!(
                    "(a log message of {} code units, over the {} kuryr6 reads, not shown)",
                    message.units,
                    boundary::MAX_LOG_READ
                );
                cx.data_mut().log.write(level, &note);
                return Ok(());
            }
            let message = {
                let text = message.text.to_str(&cx)?;
                let mut end = text.len().min(boundary::MAX_LOG_MESSAGE + 1);
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                text[..end].to_string()
            };
            cx.data_mut().log.write(level, &message);
            Ok(())
        },
    )
}

impl Ctx {
    fn new(
        output: &MemoryOutputPipe,
        memory_bytes: usize,
        plugin: &str,
        hook: &'static str,
    ) -> Ctx {
        let wasi = WasiCtxBuilder::new()
            .stdout(output.clone())
            .stderr(output.clone())
            .wall_clock(FrozenWall)
            .monotonic_clock(FrozenMonotonic)
            .secure_random(StdRng::seed_from_u64(SECURE_SEED))
            .insecure_random(StdRng::seed_from_u64(INSECURE_SEED))
            .insecure_random_seed(INSECURE_SEED_128)
            .max_random_size(MAX_RANDOM_BYTES)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let mut table = ResourceTable::new();
        table.set_max_capacity(boundary::MAX_WASI_RESOURCES);
        Ctx {
            wasi,
            table,
            limiter: Limiter::new(memory_bytes),
            log: PluginLog {
                plugin: plugin.to_string(),
                hook,
                lines: 0,
                dropped: 0,
            },
        }
    }
}

impl WasiView for Ctx {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// The store's resource limits. Unlike `StoreLimits`, whose memory cap is
/// per memory (16 memories could each reach it), the cap here is on the sum
/// of all linear memories of the store, and so are table elements. A grow
/// past a cap traps (rather than returning -1 to the guest) and is
/// remembered, so the trap is reported as `Memory` or `Oversize`.
struct Limiter {
    memory_cap: usize,
    memory_total: usize,
    memory_exceeded: bool,
    table_elements: usize,
    tables_exceeded: Option<Oversized>,
}

impl Limiter {
    fn new(memory_cap: usize) -> Limiter {
        Limiter {
            memory_cap,
            memory_total: 0,
            memory_exceeded: false,
            table_elements: 0,
            tables_exceeded: None,
        }
    }
}

impl ResourceLimiter for Limiter {
    /// Called when a memory is created (`current` = 0) and on every grow.
    /// Memories never shrink and die with the store (one per call), so a
    /// running sum is exact; a grow that fails after approval only makes it
    /// conservative.
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = (self.memory_total - current.min(self.memory_total)).saturating_add(desired);
        if total > self.memory_cap {
            self.memory_exceeded = true;
            wasmtime::bail!(
                "forcing trap when growing memory to {desired} bytes: all memories together would use {total} bytes, the cap is {}",
                self.memory_cap
            );
        }
        self.memory_total = total;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total =
            (self.table_elements - current.min(self.table_elements)).saturating_add(desired);
        if let Err(e) = bounded("table elements", total, boundary::MAX_TABLE_ELEMENTS) {
            self.tables_exceeded = Some(e.clone());
            return Err(e.into());
        }
        self.table_elements = total;
        Ok(true)
    }

    fn instances(&self) -> usize {
        boundary::MAX_INSTANCES
    }

    fn tables(&self) -> usize {
        boundary::MAX_TABLES
    }

    fn memories(&self) -> usize {
        boundary::MAX_MEMORIES
    }
}

struct FrozenWall;

impl HostWallClock for FrozenWall {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        FROZEN_WALL
    }
}

struct FrozenMonotonic;

impl HostMonotonicClock for FrozenMonotonic {
    fn resolution(&self) -> u64 {
        1
    }
    fn now(&self) -> u64 {
        0
    }
}

/// `wasi:clocks/monotonic-clock` in virtual time: always 0, and every
/// subscription is ready at once, so a sleeping guest never blocks the host
/// where the epoch deadline cannot reach it.
struct VirtualClock<'a>(&'a mut ResourceTable);
struct VirtualTime;

impl HasData for VirtualTime {
    type Data<'a> = VirtualClock<'a>;
}

struct Ready;

#[wasmtime_wasi::async_trait]
impl Pollable for Ready {
    async fn ready(&mut self) {}
}

impl VirtualClock<'_> {
    fn ready(&mut self) -> wasmtime::Result<Resource<DynPollable>> {
        let r = self.0.push(Ready)?;
        wasmtime_wasi::p2::subscribe(self.0, r)
    }
}

impl wasmtime_wasi::p2::bindings::clocks::monotonic_clock::Host for VirtualClock<'_> {
    fn now(&mut self) -> wasmtime::Result<u64> {
        Ok(0)
    }
    fn resolution(&mut self) -> wasmtime::Result<u64> {
        Ok(1)
    }
    fn subscribe_instant(&mut self, _when: u64) -> wasmtime::Result<Resource<DynPollable>> {
        self.ready()
    }
    fn subscribe_duration(&mut self, _duration: u64) -> wasmtime::Result<Resource<DynPollable>> {
        self.ready()
    }
}

/// Advances the engine's epoch every `TICK` until dropped.
struct Ticker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Ticker {
    /// Without the ticker no deadline would ever fire, so failing to
    /// start it is an error, not a degraded mode.
    fn start(engine: Engine) -> Result<Ticker, String> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("kuryr6-plugin-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::park_timeout(TICK);
                    engine.increment_epoch();
                }
            })
            .map_err(|e| format!("cannot start the plugin deadline thread: {e}"))?;
        Ok(Ticker {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

/// Feeds `Hash` output into sha256, for a cache key that is stable across
/// processes (std's hashers are randomly seeded).
struct DigestHasher(Sha256);

impl Hasher for DigestHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
    fn finish(&self) -> u64 {
        // Only `write` is used: the key is taken from the full digest.
        0
    }
}

/// What `describe` (and `version`) answered is usable: names by the name
/// rule, and the ABI this host runs.
fn check_described(
    label: &str,
    contract: &str,
    info: &RawInfo,
    version: Option<&str>,
) -> Result<(), PluginError> {
    if let Err(e) = crate::validate::check_name(&info.name.0) {
        return Err(PluginError::InvalidOutput {
            plugin: label.to_string(),
            hook: "describe",
            reason: format!("its plugin {e}"),
        });
    }
    if let Some(v) = version
        && let Err(e) = crate::validate::check_name(v)
    {
        return Err(PluginError::InvalidOutput {
            plugin: label.to_string(),
            hook: "version",
            reason: format!("its version {e}"),
        });
    }
    if info.abi_version != super::ABI_VERSION {
        return Err(PluginError::AbiMismatch {
            plugin: label.to_string(),
            expected: format!("abi-version {}", super::ABI_VERSION),
            found: format!("{contract} with abi-version {}", info.abi_version),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1 << 20;

    #[test]
    fn all_memories_of_a_store_count_against_one_cap() {
        let mut l = Limiter::new(10 * MIB);
        // Creation is a grow from 0; two memories, 6 + 3 MiB.
        assert!(l.memory_growing(0, 6 * MIB, None).unwrap());
        assert!(l.memory_growing(0, 3 * MIB, None).unwrap());
        // The second grows to 4 MiB: 10 MiB in all, still within the cap.
        assert!(l.memory_growing(3 * MIB, 4 * MIB, None).unwrap());
        assert!(!l.memory_exceeded);
        // A third memory of one page would be past it, though each alone
        // is far below the cap (StoreLimits would have allowed it).
        assert!(l.memory_growing(0, 64 * 1024, None).is_err());
        assert!(l.memory_exceeded);
    }

    #[test]
    fn table_elements_are_summed_across_tables() {
        let mut l = Limiter::new(MIB);
        let half = boundary::MAX_TABLE_ELEMENTS / 2;
        assert!(l.table_growing(0, half, None).unwrap());
        assert!(l.table_growing(0, half, None).unwrap());
        assert!(l.table_growing(half, half + 1, None).is_err());
        assert_eq!(
            l.tables_exceeded.as_ref().map(|o| o.size),
            Some(boundary::MAX_TABLE_ELEMENTS + 1)
        );
        assert_eq!(
            (l.instances(), l.tables(), l.memories()),
            (
                boundary::MAX_INSTANCES,
                boundary::MAX_TABLES,
                boundary::MAX_MEMORIES
            )
        );
    }

    #[test]
    fn the_wasi_resource_table_is_capped() {
        let out = MemoryOutputPipe::new(16);
        let mut ctx = Ctx::new(&out, MIB, "test", "naming");
        for _ in 0..boundary::MAX_WASI_RESOURCES {
            ctx.table.push(Ready).unwrap();
        }
        assert!(matches!(
            ctx.table.push(Ready),
            Err(wasmtime::component::ResourceTableError::Full)
        ));
    }
}
