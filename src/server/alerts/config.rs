//! Alert settings as the command line and the config file give them: `[alerts]` in the
//! config file, `--alert-rules FILE` (a TOML file of `[[rules]]`), `--webhook URL` and
//! `--alertmanager URL`. Rules are checked here, so a bad rule stops start-up with one line
//! naming the file, the rule and the field.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::engine::FlapSettings;
use super::notify::{ReceiverConfig, ReceiverKind, DEFAULT_TIMEOUT};
use super::AlertsConfig;
use crate::model::alerts::{Rule, RuleSource};
use crate::server::config::{ConfigError, Secret};
use crate::server::outbound::Endpoint;

/// `[alerts]` in the config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AlertsFile {
    default_rules: Option<bool>,
    flap_window_secs: Option<u64>,
    flap_max_changes: Option<usize>,
    alertmanager: Option<String>,
    #[serde(default)]
    webhooks: Vec<WebhookFile>,
    /// Rule fields are snake_case, as in the JSON API.
    #[serde(default)]
    rules: Vec<Rule>,
}

/// `[[alerts.webhooks]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct WebhookFile {
    url: String,
    timeout_secs: Option<f64>,
    /// Sent as `Authorization: Bearer`.
    bearer_token: Option<String>,
}

/// A file given with `--alert-rules`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    #[serde(default)]
    rules: Vec<Rule>,
}

/// The alert options of the command line and environment.
#[derive(Debug, Default)]
pub struct AlertArgs<'a> {
    pub webhooks: &'a [String],
    pub alertmanager: Option<&'a str>,
    pub rules_file: Option<&'a Path>,
    pub default_rules: Option<bool>,
}

fn invalid(path: &str, reason: String) -> ConfigError {
    ConfigError::Invalid { path: path.to_string(), reason }
}

/// Merges the flags (which win) with `[alerts]` of the config file at `file_path`.
pub fn resolve(
    args: &AlertArgs<'_>,
    file: Option<AlertsFile>,
    file_path: Option<&Path>,
) -> Result<AlertsConfig, ConfigError> {
    let file = file.unwrap_or_default();
    let shown =
        file_path.map_or_else(|| "the config file".to_string(), |p| p.display().to_string());
    let d = FlapSettings::default();
    let flap = FlapSettings {
        window_ms: file.flap_window_secs.map_or(d.window_ms, |s| s.saturating_mul(1000)),
        max_changes: file.flap_max_changes.unwrap_or(d.max_changes),
    };
    if flap.window_ms == 0 || flap.max_changes == 0 {
        return Err(invalid(
            &shown,
            "[alerts] flap-window-secs and flap-max-changes must be > 0".into(),
        ));
    }
    let mut rules = Vec::new();
    let mut names = BTreeSet::new();
    let mut take = |list: Vec<Rule>, source: &str| -> Result<(), ConfigError> {
        for mut rule in list {
            rule.name = rule.name.trim().to_string();
            super::validate(&rule).map_err(|e| {
                invalid(source, format!("alert rule \"{}\": {}: {}", rule.name, e.field, e.message))
            })?;
            if !names.insert(rule.name.clone()) {
                return Err(invalid(
                    source,
                    format!("alert rule \"{}\" is defined twice", rule.name),
                ));
            }
            rule.source = RuleSource::Config;
            rules.push(rule);
        }
        Ok(())
    };
    take(file.rules, &shown)?;
    if let Some(path) = args.rules_file {
        let path_shown = path.display().to_string();
        let parsed: RulesFile = crate::server::config::load_toml(path)?;
        take(parsed.rules, &path_shown)?;
    }
    let mut receivers = Vec::new();
    let webhooks: Vec<(String, Option<f64>, Option<String>)> = if args.webhooks.is_empty() {
        file.webhooks.into_iter().map(|w| (w.url, w.timeout_secs, w.bearer_token)).collect()
    } else {
        args.webhooks.iter().map(|u| (u.clone(), None, None)).collect()
    };
    for (url, timeout, token) in webhooks {
        let endpoint = Endpoint::parse(url.trim()).map_err(|e| ConfigError::OutOfRange {
            name: "webhook",
            rule: "an http:// URL",
            value: e,
        })?;
        let timeout = match timeout {
            None => DEFAULT_TIMEOUT,
            Some(t) if t.is_finite() && t > 0.0 && t <= 60.0 => Duration::from_secs_f64(t),
            Some(t) => {
                return Err(invalid(
                    &shown,
                    format!("webhook timeout-secs must be > 0 and <= 60 (got {t})"),
                ))
            }
        };
        receivers.push(ReceiverConfig {
            kind: ReceiverKind::Webhook,
            endpoint,
            timeout,
            token: token.filter(|t| !t.is_empty()).map(Secret::new),
        });
    }
    if let Some(url) = args.alertmanager.map(str::to_string).or(file.alertmanager) {
        let endpoint = Endpoint::parse(url.trim()).map_err(|e| ConfigError::OutOfRange {
            name: "alertmanager",
            rule: "an http:// URL of Alertmanager",
            value: e,
        })?;
        receivers.push(ReceiverConfig {
            kind: ReceiverKind::Alertmanager,
            endpoint,
            timeout: DEFAULT_TIMEOUT,
            token: None,
        });
    }
    Ok(AlertsConfig {
        rules,
        default_rules: args.default_rules.or(file.default_rules).unwrap_or(true),
        flap,
        receivers,
        base_url: String::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_of(text: &str) -> AlertsFile {
        #[derive(Deserialize)]
        struct Top {
            alerts: AlertsFile,
        }
        toml::from_str::<Top>(text).unwrap().alerts
    }

    #[test]
    fn rules_webhooks_and_alertmanager_from_the_file() {
        let file = file_of(
            r#"
            [alerts]
            alertmanager = "http://127.0.0.1:9093"
            [[alerts.webhooks]]
            url = "http://127.0.0.1:9000/hook"
            timeout-secs = 2
            [[alerts.rules]]
            name = "api slow"
            target = { operation = "api.*", stat = "p95", window = "5m" }
            warning = { above = 2000, clear_below = 1800 }
            for_secs = 120
            "#,
        );
        let c = resolve(&AlertArgs::default(), Some(file), None).unwrap();
        assert_eq!(c.rules.len(), 1);
        assert_eq!(c.rules[0].source, RuleSource::Config);
        assert_eq!(c.receivers.len(), 2);
        assert_eq!(c.receivers[0].timeout, Duration::from_secs(2));
        assert_eq!(c.receivers[1].kind, ReceiverKind::Alertmanager);
        assert!(c.default_rules);
    }

    #[test]
    fn a_bad_rule_is_one_line_naming_the_file_the_rule_and_the_field() {
        let file = file_of(
            r#"
            [[alerts.rules]]
            name = "cache"
            target = { gauge = "cache.hit_pct" }
            warning = { below = 70, clear_above = 60 }
            "#,
        );
        let err = resolve(&AlertArgs::default(), Some(file), Some(Path::new("/etc/v.toml")))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("/etc/v.toml") && err.contains("\"cache\"") && err.contains("warning:"),
            "{err}"
        );
        assert!(!err.contains('\n'));
        let webhooks = ["https://hooks.example/x".to_string()];
        let args = AlertArgs { webhooks: &webhooks, ..Default::default() };
        let err = resolve(&args, None, None).unwrap_err().to_string();
        assert!(err.contains("https"), "{err}");
    }

    #[test]
    fn the_example_rules_file_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/alert-rules.example.toml");
        let args = AlertArgs { rules_file: Some(&path), ..Default::default() };
        let c = resolve(&args, None, None).unwrap();
        assert!(c.rules.len() >= 6, "{}", c.rules.len());
    }
}
