//! Configuration: defaults, then a TOML file, then `FINPULSE_*` environment variables, then
//! command-line flags. Unknown keys are errors, so a typo never silently keeps a default.

use anyhow::{Context, Result, bail};
use finpulse_server::ApiLimits;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The default data directory.
pub const DATA_DIR_DEFAULT: &str = "./finpulse-data";
/// The default listen address.
pub const LISTEN_DEFAULT: &str = "127.0.0.1:8080";

/// Everything a finpulse process can be configured with.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where events, the log and Parquet live.
    pub data_dir: PathBuf,
    /// HTTP listen address.
    pub listen: SocketAddr,
    /// `text` or `json` logs on stderr.
    pub log_format: String,
    /// API limits.
    pub limits: ApiLimits,
    /// Storage settings.
    pub store: StoreConfig,
    /// Access control: the home tenant, whether /metrics needs a key, what needs approval.
    pub access: finpulse_server::access::AccessOptions,
    /// Protection at rest: the master key file and the algorithm personal fields are sealed with.
    pub protect: finpulse_server::protection::ProtectOptions,
    /// The deployment's data directory, when `--tenant` chose another tenant than the home
    /// one: `data_dir` is then that tenant's, and keys, users, approvals and the audit log
    /// stay here.
    #[serde(skip)]
    pub root_dir: Option<PathBuf>,
    /// The tenant `--tenant` chose.
    #[serde(skip)]
    pub chosen_tenant: Option<String>,
}

/// Storage settings.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// Tail events that trigger a compaction into Parquet.
    pub tail_events_max: usize,
    /// Log segment size, bytes.
    pub segment_bytes_max: u64,
    /// Zeroed space kept ahead of the log's records, bytes (0: none; commits then also write
    /// the file's new size).
    pub zero_ahead_bytes: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            tail_events_max: finpulse_log::store::TAIL_EVENTS_MAX_DEFAULT,
            segment_bytes_max: finpulse_log::wal::SEGMENT_BYTES_MAX_DEFAULT,
            zero_ahead_bytes: finpulse_log::wal::ZERO_AHEAD_BYTES_DEFAULT,
        }
    }
}

impl StoreConfig {
    /// As store options.
    pub fn options(&self) -> finpulse_log::StoreOptions {
        finpulse_log::StoreOptions {
            wal: finpulse_log::wal::WalOptions { segment_bytes_max: self.segment_bytes_max, zero_ahead_bytes: self.zero_ahead_bytes },
            tail_events_max: self.tail_events_max,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: DATA_DIR_DEFAULT.into(),
            listen: LISTEN_DEFAULT.parse().expect("valid default address"),
            log_format: "text".into(),
            limits: ApiLimits::default(),
            store: StoreConfig::default(),
            access: finpulse_server::access::AccessOptions::default(),
            protect: finpulse_server::protection::ProtectOptions::default(),
            root_dir: None,
            chosen_tenant: None,
        }
    }
}

/// Environment variable prefix; `__` separates a section from its key
/// (e.g. `FINPULSE_LIMITS__BODY_BYTES_MAX`).
pub const ENV_PREFIX: &str = "FINPULSE_";
/// The log filter (tracing's env-filter syntax); not a config key.
pub const LOG_FILTER_ENV: &str = "FINPULSE_LOG";
/// The API key clients send (`Authorization: Bearer $FINPULSE_KEY`, as the README and the
/// benchmark scripts use it); not a config key.
pub const KEY_ENV: &str = "FINPULSE_KEY";

impl Config {
    /// Makes the command work on `tenant`'s data: `data_dir` becomes its data directory
    /// (`tenants/<name>` under the deployment's, or the deployment's own for the home tenant).
    pub fn choose_tenant(&mut self, tenant: Option<String>) -> Result<()> {
        let Some(tenant) = tenant else { return Ok(()) };
        if !finpulse_access::keys::valid_tenant(&tenant) {
            bail!("--tenant '{tenant}' must be 1 to 63 lower-case letters, digits, '_' or '-'");
        }
        let root = self.data_dir.clone();
        self.data_dir = finpulse_access::tenant_data_dir(&root, &self.access.tenant, &tenant);
        self.root_dir = Some(root);
        self.chosen_tenant = Some(tenant);
        Ok(())
    }

    /// The tenant a command works on: the one `--tenant` chose, or the home tenant.
    pub fn tenant(&self) -> &str {
        self.chosen_tenant.as_deref().unwrap_or(&self.access.tenant)
    }

    /// The deployment's data directory: where keys, users, approvals and the audit log are.
    pub fn access_root(&self) -> &Path {
        self.root_dir.as_deref().unwrap_or(&self.data_dir)
    }

    /// Loads defaults, the file (if given, or `finpulse.toml` in the working directory if it
    /// exists), then environment overrides.
    pub fn load(file: Option<&Path>, env: impl Iterator<Item = (String, String)>) -> Result<Self> {
        let mut table = toml::Table::try_from(Config::default()).context("serialising defaults")?;
        let implicit = Path::new("finpulse.toml");
        let path = file.or_else(|| implicit.exists().then_some(implicit));
        if let Some(path) = path {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading config {}", path.display()))?;
            let from_file: toml::Table = text.parse().with_context(|| format!("parsing config {}", path.display()))?;
            merge(&mut table, from_file);
        }
        for (key, value) in env {
            let Some(rest) = key.strip_prefix(ENV_PREFIX) else { continue };
            if [LOG_FILTER_ENV, KEY_ENV, finpulse_protect::MASTER_KEY_ENV].contains(&key.as_str()) {
                continue;
            }
            let path: Vec<String> = rest.split("__").map(|s| s.to_ascii_lowercase()).collect();
            let parsed = value
                .parse::<i64>()
                .map(toml::Value::Integer)
                .or_else(|_| value.parse::<bool>().map(toml::Value::Boolean))
                .unwrap_or(toml::Value::String(value.clone()));
            let mut node = &mut table;
            for section in &path[..path.len() - 1] {
                node = match node.get_mut(section) {
                    Some(toml::Value::Table(t)) => t,
                    _ => bail!("environment variable {key}: no config section '{section}'"),
                };
            }
            let leaf = &path[path.len() - 1];
            if !node.contains_key(leaf) {
                bail!("environment variable {key}: no config key '{leaf}'");
            }
            node.insert(leaf.clone(), parsed);
        }
        let config: Config = toml::Value::Table(table).try_into().context("invalid configuration")?;
        if !matches!(config.log_format.as_str(), "text" | "json") {
            bail!("log_format must be 'text' or 'json', not '{}'", config.log_format);
        }
        config.limits.check().context("invalid configuration")?;
        config.protect.check().context("invalid configuration")?;
        Ok(config)
    }
}

fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_then_environment_override_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "listen = \"127.0.0.1:9999\"\n[limits]\nbatch_records_max = 10\nsql_rows_max = 7\n").unwrap();
        let env = vec![
            ("FINPULSE_LIMITS__SQL_ROWS_MAX".to_string(), "5".to_string()),
            ("OTHER".into(), "x".into()),
            // The key a shell keeps for curl is not configuration.
            ("FINPULSE_KEY".into(), "fpk_0123456789ab_0123".into()),
        ];
        let c = Config::load(Some(&file), env.into_iter()).unwrap();
        assert_eq!(c.listen.port(), 9999);
        assert_eq!(c.limits.batch_records_max, 10);
        assert_eq!(c.limits.sql_rows_max, 5);
        assert_eq!(c.limits.field_bytes_max, ApiLimits::default().field_bytes_max);
    }

    #[test]
    fn unknown_keys_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "[limits]\nbatch_recrods_max = 10\n").unwrap();
        assert!(Config::load(Some(&file), std::iter::empty()).is_err());
        let env = vec![("FINPULSE_LIMITS__NOPE".to_string(), "5".to_string())];
        let err = Config::load(None, env.into_iter()).unwrap_err().to_string();
        assert!(err.contains("FINPULSE_LIMITS__NOPE"), "{err}");
    }

    #[test]
    fn limits_that_do_not_fit_together_are_refused_at_start() {
        let too_long = vec![("FINPULSE_LIMITS__FIELD_BYTES_MAX".to_string(), (2 << 20).to_string())];
        let err = format!("{:#}", Config::load(None, too_long.into_iter()).unwrap_err());
        assert!(err.contains("limits.field_bytes_max = 2097152") && err.contains("record limit"), "{err}");
        let over_body = vec![
            ("FINPULSE_LIMITS__FIELD_BYTES_MAX".to_string(), "65536".to_string()),
            ("FINPULSE_LIMITS__BODY_BYTES_MAX".to_string(), "1024".to_string()),
        ];
        let err = format!("{:#}", Config::load(None, over_body.into_iter()).unwrap_err());
        assert!(err.contains("is over body_bytes_max = 1024"), "{err}");
        let zero = vec![("FINPULSE_LIMITS__QUERIES_CONCURRENT_MAX".to_string(), "0".to_string())];
        let err = format!("{:#}", Config::load(None, zero.into_iter()).unwrap_err());
        assert!(err.contains("limits.queries_concurrent_max must be at least 1"), "{err}");
    }
}
