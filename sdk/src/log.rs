//! Lines into kuryr6's own log (contract 0.2.0, the `log` import).
//!
//! ```ignore
//! kuryr6_plugin_sdk::log::info(&format!("site {site}: using prefix {prefix}"));
//! ```
//!
//! The host writes them to its tracing output (target `kuryr6::plugin`,
//! shown with `kuryr6 -v` or `RUST_LOG=kuryr6::plugin=debug`), tagged with
//! the plugin and the hook. It cuts a message to 1024 bytes, escapes control
//! characters and keeps 64 lines per call, counting the rest as dropped;
//! logging never fails a hook. Outside WebAssembly (a plugin's native unit
//! tests) lines go to stderr.

/// How important a line is; kuryr6 shows `warn` and `error` by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// Writes one line at `level`.
pub fn log(level: Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    {
        use crate::bindings::kuryr6::plugin::log as host;
        let level = match level {
            Level::Debug => host::Level::Debug,
            Level::Info => host::Level::Info,
            Level::Warn => host::Level::Warn,
            Level::Error => host::Level::Error,
        };
        host::log(level, message);
    }
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("[{}] {message}", level.as_str());
}

pub fn debug(message: &str) {
    log(Level::Debug, message)
}

pub fn info(message: &str) {
    log(Level::Info, message)
}

pub fn warn(message: &str) {
    log(Level::Warn, message)
}

pub fn error(message: &str) {
    log(Level::Error, message)
}
