//! Exceptions, and the one place core errors and panics become them.

use kube_engine_core::error::{ArgumentError, ArgumentErrorKind, Error};
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyKeyError, PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};

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
    "A scheduler configuration (profile, plugin, args) is not valid; `.plugin` names the plugin \
     at fault and `.path` where in the configuration, when known (else None)."
);
create_exception!(
    kube_engine,
    InternalError,
    KubeEngineError,
    "A bug in kube-engine (a Rust panic, caught before it could crash Python)."
);

/// The classes with two bases, which `create_exception!` cannot make: made with `type()` on
/// first use (the module's import).
static INVALID_ARGUMENT: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static UNKNOWN_NAME: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// `InvalidArgumentError(KubeEngineError, ValueError)`: callers that catch `ValueError` keep
/// catching it.
fn invalid_argument_error(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    let ty = INVALID_ARGUMENT.get_or_try_init(py, || {
        let bases = [
            py.get_type::<KubeEngineError>(),
            py.get_type::<PyValueError>(),
        ];
        new_class(
            py,
            "InvalidArgumentError",
            &bases,
            "An argument cannot be used (a value out of range, a name the snapshot does not \
             have); `.argument` names it.",
        )
    })?;
    Ok(ty.bind(py))
}

/// `UnknownNameError(InvalidArgumentError, KeyError)`: a name the snapshot does not have, which
/// callers caught as a `KeyError` before there was an `InvalidArgumentError`.
fn unknown_name_error(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    let ty = UNKNOWN_NAME.get_or_try_init(py, || {
        let bases = [
            invalid_argument_error(py)?.clone(),
            py.get_type::<PyKeyError>(),
        ];
        new_class(
            py,
            "UnknownNameError",
            &bases,
            "A pod, node or resource name the snapshot does not have; `.argument` says which \
             argument gave it.",
        )
    })?;
    Ok(ty.bind(py))
}

fn new_class(
    py: Python<'_>,
    name: &str,
    bases: &[Bound<'_, PyType>],
    doc: &str,
) -> PyResult<Py<PyType>> {
    let namespace = PyDict::new(py);
    namespace.set_item("__module__", "kube_engine")?;
    namespace.set_item("__doc__", doc)?;
    let class = py
        .get_type::<PyType>()
        .call1((name, PyTuple::new(py, bases)?, namespace))?;
    Ok(class.cast_into::<PyType>()?.unbind())
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("KubeEngineError", py.get_type::<KubeEngineError>())?;
    m.add("SnapshotError", py.get_type::<SnapshotError>())?;
    m.add("QuantityError", py.get_type::<QuantityError>())?;
    m.add("ClusterError", py.get_type::<ClusterError>())?;
    let config = py.get_type::<ConfigError>();
    // Defaults for the instances raised from Python, which carry no structured fields.
    config.setattr("plugin", py.None())?;
    config.setattr("path", py.None())?;
    m.add("ConfigError", config)?;
    m.add("InternalError", py.get_type::<InternalError>())?;
    m.add("InvalidArgumentError", invalid_argument_error(py)?)?;
    m.add("UnknownNameError", unknown_name_error(py)?)?;
    Ok(())
}

/// An exception of class `ty` with `message`, and the structured fields as attributes.
fn raise(
    ty: PyResult<&Bound<'_, PyType>>,
    message: String,
    fields: &[(&str, Option<String>)],
) -> PyErr {
    let made = ty.and_then(|ty| {
        let value = ty.call1((message,))?;
        for (name, field) in fields {
            value.setattr(*name, field)?;
        }
        Ok(value)
    });
    match made {
        Ok(value) => PyErr::from_value(value),
        Err(e) => e,
    }
}

/// A core error as the Python exception of its kind: input → `SnapshotError` (`QuantityError`
/// for a bare quantity), configuration → `ConfigError`, an unusable argument →
/// `InvalidArgumentError` (`UnknownNameError` for an unknown name), a file → `OSError`, a failed consistency check → `InternalError`.
pub fn to_py(py: Python<'_>, e: Error) -> PyErr {
    match e {
        Error::Input(e) => raise(
            Ok(&py.get_type::<SnapshotError>()),
            e.to_string(),
            &[("path", Some(e.path)), ("message", Some(e.message))],
        ),
        Error::Quantity(e) => QuantityError::new_err(e.to_string()),
        Error::Config(e) => {
            let path = (!e.path.is_empty()).then(|| e.path.clone());
            raise(
                Ok(&py.get_type::<ConfigError>()),
                e.to_string(),
                &[("plugin", e.plugin), ("path", path)],
            )
        }
        Error::InvalidArgument(ArgumentError {
            argument,
            kind,
            message,
        }) => {
            let fields = [("argument", Some(argument))];
            match kind {
                ArgumentErrorKind::Invalid => raise(invalid_argument_error(py), message, &fields),
                ArgumentErrorKind::UnknownName => raise(unknown_name_error(py), message, &fields),
            }
        }
        Error::Io { path, source } => {
            PyOSError::new_err((source.raw_os_error().unwrap_or(0), source.to_string(), path))
        }
        Error::Internal(msg) => {
            InternalError::new_err(format!("internal error (please report): {msg}"))
        }
    }
}

/// Core results as Python ones, through [`to_py`].
pub trait OrRaise<T> {
    fn or_raise(self, py: Python<'_>) -> PyResult<T>;
}

impl<T, E: Into<Error>> OrRaise<T> for Result<T, E> {
    fn or_raise(self, py: Python<'_>) -> PyResult<T> {
        self.map_err(|e| to_py(py, e.into()))
    }
}

/// `argument` is unusable (`InvalidArgumentError`).
pub fn invalid_argument(py: Python<'_>, argument: &str, message: String) -> PyErr {
    to_py(py, ArgumentError::invalid(argument, message).into())
}

/// `argument` names something the snapshot does not have (`UnknownNameError`).
pub fn unknown_name(py: Python<'_>, argument: &str, message: String) -> PyErr {
    to_py(py, ArgumentError::unknown_name(argument, message).into())
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
