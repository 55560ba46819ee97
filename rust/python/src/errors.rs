//! Exceptions, and the one place core errors and panics become them.

use kube_engine_core::error::{Error, InputError};
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyOSError, PyValueError};
use pyo3::prelude::*;

create_exception!(
    kube_engine,
    KubeEngineError,
    PyException,
    "Base class of every error kube-engine raises on purpose."
);
create_exception!(
    kube_engine,
    SnapshotError,
    KubeEngineError,
    "A snapshot is not valid Kubernetes input; `.path` says where, `.message` what."
);
create_exception!(
    kube_engine,
    QuantityError,
    KubeEngineError,
    "A string is not a valid Kubernetes quantity."
);
create_exception!(
    kube_engine,
    ClusterError,
    KubeEngineError,
    "Reading from or writing to a Kubernetes API failed."
);
create_exception!(
    kube_engine,
    ConfigError,
    KubeEngineError,
    "A scheduler configuration (profile, plugin, args) is not valid."
);
create_exception!(
    kube_engine,
    InternalError,
    KubeEngineError,
    "A bug in kube-engine (a Rust panic, caught before it could crash Python)."
);

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("KubeEngineError", py.get_type::<KubeEngineError>())?;
    m.add("SnapshotError", py.get_type::<SnapshotError>())?;
    m.add("QuantityError", py.get_type::<QuantityError>())?;
    m.add("ClusterError", py.get_type::<ClusterError>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    m.add("InternalError", py.get_type::<InternalError>())?;
    Ok(())
}

pub fn input_error(py: Python<'_>, e: InputError) -> PyErr {
    let err = SnapshotError::new_err(e.to_string());
    // Structured fields for callers that want more than the message.
    let value = err.value(py);
    let _ = value.setattr("path", e.path);
    let _ = value.setattr("message", e.message);
    err
}

pub fn to_py(py: Python<'_>, e: Error) -> PyErr {
    match e {
        Error::Input(e) => input_error(py, e),
        Error::Io { path, source } => {
            PyOSError::new_err((source.raw_os_error().unwrap_or(0), source.to_string(), path))
        }
        Error::InvalidArgument(msg) => PyValueError::new_err(msg),
    }
}

/// Runs `f` without the GIL, turning a panic into `InternalError` instead of unwinding into
/// Python.
pub fn detached<T: Send>(py: Python<'_>, f: impl FnOnce() -> T + Send) -> PyResult<T> {
    py.detach(|| std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)))
        .map_err(|panic| {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            InternalError::new_err(format!("internal error (please report): {msg}"))
        })
}
