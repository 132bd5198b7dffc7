//! Command-line tools `./e2e/env up` installs: helm and the offline manifest validator.

use std::path::{Path, PathBuf};

use crate::env::{self, E2eEnv, Part};

/// Paths of helm and kubernetes-validate.
#[derive(Debug, Clone)]
pub struct Tools {
    helm: PathBuf,
    kubernetes_validate: PathBuf,
}

impl Tools {
    /// Read `HELM` and `KUBERNETES_VALIDATE` and check both files exist.
    /// `None` (skip) or a panic under `REQUIRE_E2E=1` when they are missing.
    pub fn find() -> Option<Self> {
        match Self::try_find() {
            Ok(tools) => Some(tools),
            Err(why) => env::unavailable(Part::Helm, &why),
        }
    }

    fn try_find() -> std::result::Result<Self, String> {
        let env = E2eEnv::load().map_err(|e| crate::error::chain(&e))?;
        let existing = |key: &str| {
            let path = PathBuf::from(env.require(key)?);
            if path.is_file() {
                Ok(path)
            } else {
                Err(format!("{key}={} does not exist", path.display()))
            }
        };
        Ok(Self {
            helm: existing("HELM")?,
            kubernetes_validate: existing("KUBERNETES_VALIDATE")?,
        })
    }

    /// The helm binary.
    pub fn helm(&self) -> &Path {
        &self.helm
    }

    /// The kubernetes-validate script (validates manifests against bundled JSON schemas).
    pub fn kubernetes_validate(&self) -> &Path {
        &self.kubernetes_validate
    }
}
