//! The InvokeAI installation: a Python virtual environment in the cache folder, made once per
//! version with pip and reused while it is there.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::ServerError;
use crate::env_vars;

/// The InvokeAI version installed when none is asked for.
pub const DEFAULT_VERSION: &str = "6.14.2";

/// Written into the virtual environment once pip has finished: a folder without it is an
/// interrupted install and is made anew.
const MARKER: &str = ".invk-run-installed";

/// The folder that holds the managed server's virtual environments and default root:
/// `INVK_CACHE_DIR`, else `$XDG_CACHE_HOME/invk-run`, else `~/.cache/invk-run`.
///
/// # Errors
/// When none of these can be found (no `HOME`).
pub fn cache_dir() -> Result<PathBuf, ServerError> {
    if let Some(dir) = std::env::var_os(env_vars::INVK_CACHE_DIR) {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("invk-run"));
    }
    std::env::var_os("HOME")
        .filter(|d| !d.is_empty())
        .map(|home| PathBuf::from(home).join(".cache").join("invk-run"))
        .ok_or(ServerError::NoCacheDir)
}

/// The version to install: `INVK_INVOKEAI_VERSION`, else [`DEFAULT_VERSION`].
#[must_use]
pub fn wanted_version() -> String {
    std::env::var(env_vars::INVK_INVOKEAI_VERSION)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_VERSION.to_owned())
}

/// An InvokeAI installation (a virtual environment), installed or not.
#[derive(Debug, Clone)]
pub struct Installation {
    version: String,
    venv: PathBuf,
}

impl Installation {
    /// The installation of `version` in the cache folder (it may not be installed yet).
    ///
    /// # Errors
    /// When the cache folder cannot be found.
    pub fn locate(version: &str) -> Result<Installation, ServerError> {
        Ok(Installation::at(
            version,
            cache_dir()?.join(format!("invokeai-{version}")),
        ))
    }

    /// The installation of `version` in the virtual environment `venv`.
    #[must_use]
    pub fn at(version: &str, venv: PathBuf) -> Installation {
        Installation {
            version: version.to_owned(),
            venv,
        }
    }

    /// The installation of `version`, installed first when it is not there yet.
    ///
    /// # Errors
    /// When the cache folder cannot be found or the install fails.
    pub fn ensure(version: &str) -> Result<Installation, ServerError> {
        Installation::ensure_with(version, false)
    }

    /// [`Installation::ensure`], saying nothing but errors when `quiet` (`-q`).
    ///
    /// # Errors
    /// As [`Installation::ensure`].
    pub fn ensure_with(version: &str, quiet: bool) -> Result<Installation, ServerError> {
        let inst = Installation::locate(version)?;
        if !inst.is_installed() {
            inst.install_with(quiet)?;
        }
        Ok(inst)
    }

    /// The InvokeAI version.
    #[must_use]
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The virtual environment's folder.
    #[must_use]
    pub fn venv(&self) -> &Path {
        &self.venv
    }

    /// Whether pip finished installing InvokeAI here.
    #[must_use]
    pub fn is_installed(&self) -> bool {
        self.venv.join(MARKER).is_file() && self.python().is_file()
    }

    /// The virtual environment's Python.
    #[must_use]
    pub fn python(&self) -> PathBuf {
        self.venv.join("bin").join("python")
    }

    /// The server's start script.
    #[must_use]
    pub fn invokeai_web(&self) -> PathBuf {
        self.venv.join("bin").join("invokeai-web")
    }

    /// The installed `invokeai` Python package (its source, read by the conformance tests).
    ///
    /// # Errors
    /// When the package cannot be found in the virtual environment.
    pub fn package_dir(&self) -> Result<PathBuf, ServerError> {
        let lib = self.venv.join("lib");
        let entries = crate::fs::read_dir(&lib).map_err(ServerError::Io)?;
        for entry in entries {
            let path = entry
                .map_err(ServerError::Io)?
                .path()
                .join("site-packages")
                .join("invokeai");
            if path.is_dir() {
                return Ok(path);
            }
        }
        Err(ServerError::NotInstalled {
            venv: self.venv.clone(),
            version: self.version.clone(),
        })
    }

    /// The default workflows the package ships (`app/services/workflow_records/default_workflows`).
    ///
    /// # Errors
    /// When the package cannot be found.
    pub fn default_workflows_dir(&self) -> Result<PathBuf, ServerError> {
        Ok(self
            .package_dir()?
            .join("app/services/workflow_records/default_workflows"))
    }

    /// Installs InvokeAI with pip into a fresh virtual environment, printing pip's progress to
    /// stderr. An interrupted earlier install is removed first.
    ///
    /// # Errors
    /// When Python cannot make the environment or pip fails.
    pub fn install(&self) -> Result<(), ServerError> {
        self.install_with(false)
    }

    /// [`Installation::install`]; with `quiet`, pip prints only its warnings and errors.
    /// Nothing of the install reaches stdout, which is a command's data (`--json`).
    ///
    /// # Errors
    /// As [`Installation::install`].
    pub fn install_with(&self, quiet: bool) -> Result<(), ServerError> {
        if self.venv.exists() {
            crate::fs::remove_dir_all(&self.venv).map_err(ServerError::Io)?;
        }
        if let Some(parent) = self.venv.parent() {
            crate::fs::create_dir_all(parent).map_err(ServerError::Io)?;
        }
        let python = find_python()?;
        if !quiet {
            eprintln!(
                "installing InvokeAI {} into `{}` (a few minutes, several GB)",
                self.version,
                self.venv.display()
            );
        }
        let pip_quiet: &[&str] = if quiet { &["--quiet"] } else { &[] };
        run(
            Command::new(&python).arg("-m").arg("venv").arg(&self.venv),
            "python -m venv",
        )?;
        let pip = self.venv.join("bin").join("pip");
        run(
            Command::new(&pip).args(["install", "--quiet", "--upgrade", "pip"]),
            "pip install --upgrade pip",
        )?;
        run(
            Command::new(&pip)
                .args(["install", "--progress-bar", "off"])
                .args(pip_quiet)
                .arg(format!("invokeai=={}", self.version)),
            "pip install invokeai",
        )?;
        crate::fs::write(self.venv.join(MARKER), format!("{}\n", self.version))
            .map_err(ServerError::Io)?;
        Ok(())
    }
}

/// A Python 3.11 or newer to make the virtual environment with.
fn find_python() -> Result<PathBuf, ServerError> {
    for name in ["python3.12", "python3.11", "python3"] {
        let ok = Command::new(name)
            .args([
                "-c",
                "import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Ok(PathBuf::from(name));
        }
    }
    Err(ServerError::NoPython)
}

fn run(cmd: &mut Command, what: &'static str) -> Result<(), ServerError> {
    // What the tools print goes to stderr: stdout is the command's own output.
    let status = cmd
        .stdin(Stdio::null())
        .stdout(std::io::stderr())
        .status()
        .map_err(|source| ServerError::Spawn { what, source })?;
    if status.success() {
        Ok(())
    } else {
        Err(ServerError::InstallFailed { what, status })
    }
}
