//! What the platform creates for itself at first start: the operator unit,
//! its own system, the built-in code-list API, the shipped code lists, the
//! admin token and the token signing key.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context;
use lgsp_auth::Secret;
use lgsp_registry::{NewSystem, NewUnit, Registry, now_rfc3339};
use lgsp_store::Store;

use crate::config::Config;

pub const PLATFORM_SYSTEM_CODE: &str = "lgsp";
pub const CODES_CONTEXT: &str = "danhmuc";
pub const CODES_VERSION: &str = "1.0";

pub fn admin_token_path(data_dir: &Path) -> PathBuf {
    data_dir.join("admin-token")
}

/// Creates the data directory (mode 0700) if needed.
pub fn prepare_data_dir(dir: &Path) -> anyhow::Result<()> {
    if !dir.exists() {
        fs::create_dir_all(dir)
            .with_context(|| format!("cannot create data directory {}", dir.display()))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    if !dir.is_dir() {
        anyhow::bail!("data_dir {} is not a directory", dir.display());
    }
    Ok(())
}

/// Reads the operator's admin token, creating it (mode 0600) on first start.
pub fn load_or_create_admin_token(path: &Path) -> anyhow::Result<(Secret, bool)> {
    match fs::read_to_string(path) {
        Ok(text) => {
            let token = text.trim().to_owned();
            if token.len() < 32 {
                anyhow::bail!(
                    "{} holds no usable admin token; delete it to have a new one made",
                    path.display()
                );
            }
            Ok((Secret::new(token), false))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let token = Secret::generate(32);
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            writeln!(file, "{}", token.expose())?;
            file.sync_all()?;
            Ok((token, true))
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Seeds the store with what the platform needs to run. Idempotent.
pub async fn seed(store: &Store, registry: &Registry, config: &Config) -> anyhow::Result<()> {
    if store.unit(&config.operator_unit_code).await?.is_none() {
        registry
            .add_unit(NewUnit {
                code: config.operator_unit_code.clone(),
                name: config.operator_unit_name.clone(),
                parent_code: None,
            })
            .await
            .context("creating the operator unit")?;
        tracing::info!(unit = %config.operator_unit_code, "operator unit created");
    }

    let platform_system = match store.systems().await?.into_iter().find(|s| s.builtin) {
        Some(system) => system,
        None => {
            let (system, _secret) = registry
                .add_system(
                    NewSystem {
                        unit_code: config.operator_unit_code.clone(),
                        code: PLATFORM_SYSTEM_CODE.to_owned(),
                        name: "Nền tảng tích hợp, chia sẻ dữ liệu (LGSP)".to_owned(),
                    },
                    true,
                )
                .await
                .context("creating the platform's own system")?;
            system
        }
    };

    if store
        .api_by_name(CODES_CONTEXT, CODES_VERSION)
        .await?
        .is_none()
    {
        registry
            .add_builtin_api(
                &platform_system.id,
                "Danh mục dùng chung",
                CODES_CONTEXT,
                CODES_VERSION,
            )
            .await
            .context("registering the code-list API")?;
    }

    let added =
        lgsp_codes::seed_builtin_lists(store, Some(&config.operator_unit_code), &now_rfc3339())
            .await?;
    if added > 0 {
        tracing::info!(lists = added, "shipped code lists loaded");
    }
    Ok(())
}
