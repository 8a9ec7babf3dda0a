//! Alerts: rules evaluated on every tick of the bus, one instance per rule and matching series,
//! a state machine that does not flap (`engine`), a stored history of every transition,
//! silences and acknowledgements, and notifications (`notify`).
//!
//! Where rules come from, and which wins when one name comes from several places:
//! the config file (`[[alerts.rules]]`, read-only through the API) wins over rules made or
//! changed through the API (kept in the store), which win over the built-in rules
//! (`defaults`; changing or deleting one through the API is remembered).
//!
//! Evaluation runs off the async runtime (it reads the metrics store under its lock); it only
//! queues writes and notifications, so neither a slow disk nor a slow receiver delays it.

pub mod backtest;
pub mod config;
pub mod defaults;
pub mod engine;
pub mod labels;
pub mod listing;
pub mod notify;
pub mod recommend;
pub mod targets;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use self::engine::{FlapSettings, InstanceState, Observation, Transition};
use self::labels::{Labels, OwnedLabels};
use self::notify::{Notice, Notifier, ReceiverConfig};
use self::targets::{Context, Due, Pattern, VitalsHistory, VitalsTotals};
use super::bus::Subscription;
use super::live::Hub;
use super::metrics::{tags, AppMetrics};
use super::stats::key_hash;
use super::store::alerts::{AlertWrite, EventRow, Json};
use super::store::Store;
use crate::model::alerts::{
    AlertCounts, AlertInstance, AlertState, AlertsNow, Rule, RuleError, RuleSource, Severity,
    Silence, TargetKind,
};
use crate::model::live::SystemMetrics;
use crate::model::ops::Window;

/// Most alert instances held at once, over all rules; further series are skipped and counted.
pub const MAX_INSTANCES: usize = 10_000;
/// Most rules (the API refuses more).
pub const MAX_RULES: usize = 1_000;
/// Most silences held.
pub const MAX_SILENCES: usize = 1_000;
/// A resolved instance stays listed this long.
const RESOLVED_SHOWN_MS: u64 = 10 * 60_000;
/// An inactive instance whose series has gone is forgotten after this long.
const GONE_MS: u64 = 5 * 60_000;
/// How often the fullest disk is measured.
const DISK_EVERY_MS: u64 = 10_000;

/// Alert settings from the command line and the config file.
#[derive(Clone, Debug)]
pub struct AlertsConfig {
    /// Rules of the config file (source `config`).
    pub rules: Vec<Rule>,
    /// Whether the built-in rules are on.
    pub default_rules: bool,
    pub flap: FlapSettings,
    pub receivers: Vec<ReceiverConfig>,
    /// The server's own URL for links in notifications (may be empty).
    pub base_url: String,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            rules: Vec::new(),
            default_rules: true,
            flap: FlapSettings::default(),
            receivers: Vec::new(),
            base_url: String::new(),
        }
    }
}

/// Why a rule change was refused.
#[derive(Debug, PartialEq)]
pub enum RuleChangeError {
    Invalid(RuleError),
    /// The rule comes from the config file, which wins.
    FromConfig(String),
    Exists(String),
    NotFound(String),
    TooMany,
}

impl RuleChangeError {
    /// The refusal in words, naming the field to blame (the API and the Alerts page).
    pub fn words(&self) -> RuleError {
        let name_error = |message: String| RuleError { field: "name".to_string(), message };
        match self {
            RuleChangeError::Invalid(e) => e.clone(),
            RuleChangeError::FromConfig(name) => name_error(format!(
                "rule {name} comes from the config file, which wins; change it there"
            )),
            RuleChangeError::Exists(name) => {
                name_error(format!("a rule named {name} exists already"))
            }
            RuleChangeError::NotFound(name) => name_error(format!("no rule named {name}")),
            RuleChangeError::TooMany => {
                name_error(format!("at most {MAX_RULES} rules; delete some first"))
            }
        }
    }
}

struct Compiled {
    rule: Rule,
    pattern: Option<Pattern>,
    /// The window of an operation or event statistic (it sets when a series is due).
    window: Option<Window>,
}

/// An alert instance. Only what every evaluation reads is held in the engine's map; the names
/// and labels, read only when the instance changes or is listed, sit apart (`names`): an alert
/// storm holds thousands of instances, and each evaluation's look-ups and its sweep over them
/// read fewer cache lines the smaller an entry is.
struct Instance {
    st: InstanceState,
    last_seen_ms: u64,
    /// [`key_hash`] of the rule's name: passes over every instance find its rule by this
    /// number without reading the name, a cache miss apiece with thousands held (see
    /// [`RulesIndex`]).
    rule_hash: u64,
    /// [`crate::server::stats::key_hash`] of the series key: the sweep of unseen instances
    /// asks whether each was due without reading its key.
    key_hash: u64,
    names: Box<Names>,
}

/// What identifies an instance, for its history, its notifications and the lists.
struct Names {
    /// Its id ([`instance_id`]), shared by every row written of it.
    id: Arc<str>,
    rule: Arc<str>,
    /// The series key (name and tags as the metrics store keys it, or `host`).
    key: Arc<str>,
    /// `key` as people read it ([`series_text`]), for the history and the lists.
    series: Arc<str>,
    /// Shared with the history rows of its changes (serialised by the store's writer).
    labels: Arc<BTreeMap<String, String>>,
    /// `labels` as the store keeps them (JSON), written with every change of state: made once,
    /// since an instance's labels never change.
    labels_json: Arc<str>,
}

impl Instance {
    /// An instance of the rule named `rule` for the series `key`, given their [`key_hash`]es
    /// (which an evaluation already has).
    fn new(
        (rule, rule_hash): (&str, u64),
        (key, key_hash): (&str, u64),
        labels: BTreeMap<String, String>,
        st: InstanceState,
    ) -> Self {
        let labels_json = serde_json::to_string(&labels).unwrap_or_default().into();
        Instance {
            st,
            last_seen_ms: 0,
            rule_hash,
            key_hash,
            names: Box::new(Names {
                id: id_text(instance_key_of(rule_hash, key_hash)).into(),
                rule: rule.into(),
                key: key.into(),
                series: series_text(key).into(),
                labels: Arc::new(labels),
                labels_json,
            }),
        }
    }
}

#[derive(Default)]
struct Engine {
    defaults: BTreeMap<String, Rule>,
    /// Made or changed through the API; `None`: a deleted built-in rule.
    stored: BTreeMap<String, Option<Rule>>,
    config: BTreeMap<String, Rule>,
    /// The rules in force, by name.
    rules: BTreeMap<String, Compiled>,
    /// By [`instance_key`] (the id's number: no string is built or compared per series).
    instances: HashMap<u64, Instance, foldhash::fast::FixedState>,
    silences: BTreeMap<u64, HeldSilence>,
    next_event: u64,
    vitals: VitalsHistory,
    /// The buffers the last evaluation's [`Context`] leaves for the next.
    scratch: targets::Scratch,
    disk_pct: Option<f64>,
    disk_checked_ms: u64,
    /// When the last evaluation ran (which series are due depends on it).
    last_eval_ms: Option<u64>,
    /// How many store writes the last evaluation made (the next one makes room for as many).
    last_writes: usize,
    /// The counts the live clients were last sent, and the time they were counted at: an
    /// evaluation at that time or later whose count differs (a silence ended, with no
    /// transition to tell) publishes its own. (An evaluation of a tick sampled before an
    /// acknowledgement or a silence published is older than those counts, not news.)
    published: Option<(Tally, u64)>,
}

/// A silence with its matchers' globs compiled once (every transition and every listing of the
/// alerts checks them).
struct HeldSilence {
    silence: Silence,
    /// `silence.matchers[i]`'s glob; `None` if it does not compile (it matches nothing).
    patterns: Vec<Option<Pattern>>,
}

impl HeldSilence {
    fn new(silence: Silence) -> Self {
        let patterns = silence.matchers.iter().map(|m| Pattern::new(&m.value).ok()).collect();
        HeldSilence { silence, patterns }
    }
}

/// Counters of the evaluation.
#[derive(Default)]
pub struct EvalStats {
    pub evaluations: AtomicU64,
    /// How long the last evaluation took, publishing its changes to live clients included
    /// (wall time: with waits for the statistics' lock and for a CPU).
    pub last_eval_us: AtomicU64,
    /// The CPU time the last evaluation used (its thread's, so without those waits).
    pub last_eval_cpu_us: AtomicU64,
    /// Unix ms of the last evaluation (0 before the first).
    pub last_run_ms: AtomicU64,
    /// Transitions recorded (each is a row of the history).
    pub transitions: AtomicU64,
    /// Breaching series left without an instance, [`MAX_INSTANCES`] being held (once per
    /// series and evaluation).
    pub skipped_instances: AtomicU64,
}

/// The alert engine; share the `Arc`.
pub struct Alerts {
    engine: Mutex<Engine>,
    store: Store,
    notifier: Notifier,
    hub: Arc<Hub>,
    app: Arc<AppMetrics>,
    /// For the report cache's hit rate (a Vitals figure rules can watch).
    reports: Arc<super::reports::Reports>,
    flap: FlapSettings,
    pub stats: EvalStats,
}

/// The number of a rule's instance for a series: what the engine keys them by.
pub fn instance_key(rule: &str, key: &str) -> u64 {
    instance_key_of(key_hash(rule), key_hash(key))
}

/// [`instance_key`] from the [`key_hash`] of the rule's name and of the series key (an
/// evaluation has both at hand and hashes no string per series). The same in every process of
/// one build; the store keeps each instance's rule and series beside its id, and a restore
/// keys them again, so a build that hashes differently re-keys what it loads.
pub fn instance_key_of(rule_hash: u64, series_hash: u64) -> u64 {
    use std::hash::BuildHasher;
    const IDS: foldhash::fast::FixedState = foldhash::fast::FixedState::with_seed(0x1d5_a1e7);
    IDS.hash_one((rule_hash, series_hash))
}

/// A stable id of a rule's instance for a series: [`instance_key`] in hex, as the API and the
/// store show it.
pub fn instance_id(rule: &str, key: &str) -> String {
    id_text(instance_key(rule, key))
}

/// `format!("{key:016x}")`, without the formatting machinery (every change of state writes one).
fn id_text(key: u64) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    (0..16).rev().map(|i| char::from(DIGITS[((key >> (4 * i)) & 0xf) as usize])).collect()
}

/// The key of an id as [`instance_id`] writes it (16 hex digits); `None` for anything else.
fn parse_id(id: &str) -> Option<u64> {
    (id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| u64::from_str_radix(id, 16).ok())
        .flatten()
}

/// A series key as people read it: `api.checkout{region=eu}`.
pub fn series_text(key: &str) -> String {
    let mut text = String::with_capacity(key.len() + 2);
    text.push_str(tags::name_of(key));
    for (i, (k, v)) in tags::tags_of(key).enumerate() {
        text.push(if i == 0 { '{' } else { ',' });
        text.push_str(k);
        text.push('=');
        text.push_str(v);
    }
    if text.len() > tags::name_of(key).len() {
        text.push('}');
    }
    text
}

/// A number for messages: at most three decimals, no trailing zeros.
pub fn number_text(v: f64) -> String {
    crate::charts::number(v)
}

fn render_summary(rule: &Rule, series: &str, value: Option<f64>, threshold: Option<f64>) -> String {
    if rule.summary.is_empty() {
        return match value {
            Some(v) => format!(
                "{}: {} is {}{}",
                series,
                rule.target.describe(),
                number_text(v),
                rule.target.unit()
            ),
            None => format!("{}: {} has no data", series, rule.target.describe()),
        };
    }
    rule.summary
        .replace("{{value}}", &value.map_or_else(|| "no data".to_string(), number_text))
        .replace("{{threshold}}", &threshold.map_or_else(String::new, number_text))
        .replace("{{series}}", series)
}

fn compile(rule: Rule) -> Compiled {
    let glob = match rule.target.kind() {
        Ok(TargetKind::Operation { glob, .. } | TargetKind::Event { glob, .. }) => Some(glob),
        Ok(TargetKind::Gauge(glob) | TargetKind::Counter(glob)) => Some(glob),
        _ => None,
    };
    let pattern = glob.and_then(|g| Pattern::new(g).ok());
    let window = match rule.target.kind() {
        Ok(TargetKind::Operation { window, .. } | TargetKind::Event { window, .. }) => Some(window),
        _ => None,
    };
    Compiled { rule, pattern, window }
}

/// Checks a rule, its glob included.
pub fn validate(rule: &Rule) -> Result<(), RuleError> {
    rule.validate()?;
    let glob = match rule.target.kind()? {
        TargetKind::Operation { glob, .. } => Some(("target.operation", glob)),
        TargetKind::Event { glob, .. } => Some(("target.event", glob)),
        TargetKind::Gauge(glob) => Some(("target.gauge", glob)),
        TargetKind::Counter(glob) => Some(("target.counter", glob)),
        _ => None,
    };
    if let Some((field, glob)) = glob {
        Pattern::new(glob).map_err(|e| RuleError {
            field: field.into(),
            message: format!("not a valid glob: {e}"),
        })?;
    }
    Ok(())
}

/// The rules in force by the [`key_hash`] of their name: what a pass over every instance looks
/// each one's rule up in. Two names of one hash (never seen, but possible) are told apart by name.
struct RulesIndex<'e> {
    by_hash: HashMap<u64, Option<&'e Compiled>, foldhash::fast::FixedState>,
    by_name: &'e BTreeMap<String, Compiled>,
}

impl<'e> RulesIndex<'e> {
    fn new(rules: &'e BTreeMap<String, Compiled>) -> Self {
        let mut by_hash = HashMap::with_capacity_and_hasher(rules.len(), Default::default());
        for (name, c) in rules {
            by_hash
                .entry(key_hash(name))
                .and_modify(|shared: &mut Option<&Compiled>| *shared = None)
                .or_insert(Some(c));
        }
        RulesIndex { by_hash, by_name: rules }
    }

    /// The rule of `instance`.
    fn of(&self, instance: &Instance) -> Option<&'e Compiled> {
        match self.by_hash.get(&instance.rule_hash)? {
            Some(c) => Some(c),
            None => self.by_name.get(&*instance.names.rule),
        }
    }
}

impl Engine {
    /// Recomputes the rules in force.
    fn rebuild(&mut self) {
        let mut all: BTreeMap<String, Rule> = self.defaults.clone();
        for (name, stored) in &self.stored {
            match stored {
                Some(rule) => {
                    all.insert(name.clone(), rule.clone());
                }
                None => {
                    all.remove(name);
                }
            }
        }
        for (name, rule) in &self.config {
            all.insert(name.clone(), rule.clone());
        }
        self.rules = all.into_iter().map(|(name, rule)| (name, compile(rule))).collect();
    }
}

impl Alerts {
    /// The engine with its rules, restored state and silences (blocking: reads the store).
    pub fn new(
        config: AlertsConfig,
        store: Store,
        hub: Arc<Hub>,
        app: Arc<AppMetrics>,
        reports: Arc<super::reports::Reports>,
        shutdown: CancellationToken,
    ) -> Arc<Alerts> {
        let mut engine = Engine::default();
        if config.default_rules {
            engine.defaults = defaults::rules(&app.thresholds())
                .into_iter()
                .map(|r| (r.name.clone(), r))
                .collect();
        }
        engine.config = config
            .rules
            .into_iter()
            .map(|mut r| {
                r.source = RuleSource::Config;
                (r.name.clone(), r)
            })
            .collect();
        let saved = store.readers().with(super::store::alerts::load).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "Cannot read the stored alerts; starting without them.");
            Default::default()
        });
        for (name, rule) in saved.rules {
            if engine.config.contains_key(&name) {
                tracing::info!(rule = %name, "A rule of the config file shadows the stored rule of the same name.");
            }
            engine.stored.insert(
                name,
                rule.map(|mut r| {
                    r.source = RuleSource::Api;
                    r
                }),
            );
        }
        // Keyed again from their rule and series (see [`instance_key_of`]); rows stored under
        // another key move to this one.
        let mut rekeyed = Vec::new();
        for (stored_id, rule, series, labels, state) in saved.instances {
            let (Ok(labels), Ok(st)) =
                (serde_json::from_str(&labels), serde_json::from_str(&state))
            else {
                continue;
            };
            let id = instance_key(&rule, &series);
            let instance =
                Instance::new((&rule, key_hash(&rule)), (&series, key_hash(&series)), labels, st);
            if parse_id(&stored_id) != Some(id) {
                rekeyed.push(AlertWrite::DeleteInstance { id: stored_id });
                rekeyed.push(put_instance(&instance));
            }
            engine.instances.insert(id, instance);
        }
        if !rekeyed.is_empty() {
            store.write_alerts(rekeyed);
        }
        engine.silences = saved.silences.into_iter().map(|s| (s.id, HeldSilence::new(s))).collect();
        engine.next_event = saved.last_event_id + 1;
        engine.rebuild();
        let notifier = Notifier::start(config.receivers, store.clone(), config.base_url, shutdown);
        notifier.replay(still_firing(&engine));
        let alerts = Arc::new(Alerts {
            engine: Mutex::new(engine),
            store,
            notifier,
            hub,
            app,
            reports,
            flap: config.flap,
            stats: EvalStats::default(),
        });
        alerts.publish();
        alerts
    }

    fn lock(&self) -> MutexGuard<'_, Engine> {
        self.engine.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every rule in force (disabled ones included), by name.
    pub fn rules(&self) -> Vec<Rule> {
        self.lock().rules.values().map(|c| c.rule.clone()).collect()
    }

    pub fn rule(&self, name: &str) -> Option<Rule> {
        self.lock().rules.get(name).map(|c| c.rule.clone())
    }

    /// Creates (`create`) or replaces a rule through the API.
    pub fn put_rule(&self, mut rule: Rule, create: bool) -> Result<Rule, RuleChangeError> {
        rule.name = rule.name.trim().to_string();
        validate(&rule).map_err(RuleChangeError::Invalid)?;
        let mut engine = self.lock();
        if engine.config.contains_key(&rule.name) {
            return Err(RuleChangeError::FromConfig(rule.name));
        }
        let exists = engine.rules.contains_key(&rule.name);
        if create && exists {
            return Err(RuleChangeError::Exists(rule.name));
        }
        if !create && !exists {
            return Err(RuleChangeError::NotFound(rule.name));
        }
        if !exists && engine.rules.len() >= MAX_RULES {
            return Err(RuleChangeError::TooMany);
        }
        rule.source = RuleSource::Api;
        engine.stored.insert(rule.name.clone(), Some(rule.clone()));
        engine.rebuild();
        drop(engine);
        self.store.write_alerts(vec![AlertWrite::PutRule {
            name: rule.name.clone(),
            rule: Some(Box::new(rule.clone())),
            at_ms: crate::server::now_ms(),
        }]);
        Ok(rule)
    }

    /// Deletes a rule made through the API, or a built-in one (remembered); its instances
    /// resolve at the next evaluation.
    pub fn delete_rule(&self, name: &str) -> Result<(), RuleChangeError> {
        let mut engine = self.lock();
        if engine.config.contains_key(name) {
            return Err(RuleChangeError::FromConfig(name.to_string()));
        }
        if !engine.rules.contains_key(name) {
            return Err(RuleChangeError::NotFound(name.to_string()));
        }
        let write = if engine.defaults.contains_key(name) {
            engine.stored.insert(name.to_string(), None);
            AlertWrite::PutRule {
                name: name.to_string(),
                rule: None,
                at_ms: crate::server::now_ms(),
            }
        } else {
            engine.stored.remove(name);
            AlertWrite::DeleteRule { name: name.to_string() }
        };
        engine.rebuild();
        drop(engine);
        self.store.write_alerts(vec![write]);
        Ok(())
    }

    /// Adds a silence; returns it with its id.
    pub fn add_silence(&self, mut silence: Silence, now_ms: u64) -> Result<Silence, RuleError> {
        silence.validate(now_ms)?;
        for m in &silence.matchers {
            Pattern::new(&m.value).map_err(|e| RuleError {
                field: "matchers".into(),
                message: format!("not a valid glob: {e}"),
            })?;
        }
        let mut engine = self.lock();
        engine.silences.retain(|_, s| s.silence.ends_ms > now_ms);
        if engine.silences.len() >= MAX_SILENCES {
            return Err(RuleError::new("matchers", "too many silences (1000); delete some first"));
        }
        silence.id = engine.silences.keys().next_back().map_or(1, |id| id + 1).max(now_ms);
        engine.silences.insert(silence.id, HeldSilence::new(silence.clone()));
        self.publish_locked(&mut engine, true, None, now_ms);
        drop(engine);
        self.store.write_alerts(vec![AlertWrite::PutSilence(Box::new(silence.clone()))]);
        Ok(silence)
    }

    /// Ends a silence; false when there is none with `id`.
    pub fn delete_silence(&self, id: u64) -> bool {
        let mut engine = self.lock();
        let removed = engine.silences.remove(&id).is_some();
        if removed {
            self.publish_locked(&mut engine, true, None, crate::server::now_ms());
            drop(engine);
            self.store.write_alerts(vec![AlertWrite::DeleteSilence { id }]);
        }
        removed
    }

    /// Acknowledges a pending or firing alert (until it resolves); false when there is none.
    pub fn acknowledge(&self, id: &str, acknowledged: bool) -> bool {
        let mut engine = self.lock();
        let Some(key) = parse_id(id) else { return false };
        let Some(instance) = engine.instances.get_mut(&key) else { return false };
        if !(instance.st.state.is_active() || instance.st.state == AlertState::Pending) {
            return false;
        }
        instance.st.acknowledged = acknowledged;
        let write = put_instance(instance);
        self.publish_locked(&mut engine, true, None, crate::server::now_ms());
        drop(engine);
        self.store.write_alerts(vec![write]);
        true
    }

    /// Receivers' counters.
    pub fn receivers(&self) -> Vec<crate::model::alerts::ReceiverStats> {
        self.notifier.stats()
    }

    /// The alerts now: pending, firing, recovering and recently resolved, worst first.
    pub fn now(&self, now_ms: u64) -> AlertsNow {
        self.now_limited(now_ms, usize::MAX)
    }

    /// [`Self::now`] with at most `limit` alerts listed (the counts cover them all). Only the
    /// alerts listed are rendered.
    pub fn now_limited(&self, now_ms: u64, limit: usize) -> AlertsNow {
        let engine = self.lock();
        let (counts, alerts, total) = listed(&engine, now_ms, limit);
        let silences = engine
            .silences
            .values()
            .filter(|s| s.silence.ends_ms > now_ms)
            .map(|s| s.silence.clone())
            .collect();
        drop(engine);
        AlertsNow { now_ms, counts, alerts, total, silences, receivers: self.notifier.stats() }
    }

    /// Evaluates every enabled rule against `system` (the tick's host sample) and the
    /// application's statistics at `now_ms`; records, notifies and publishes what changed.
    pub fn evaluate(&self, system: &SystemMetrics, now_ms: u64) {
        let started = Instant::now();
        let cpu_started = thread_cpu_time();
        let mut out = Outbox::new(!self.notifier.is_empty());
        let mut changed = false;
        let mut tally = Tally::default();
        {
            let mut guard = self.lock();
            let engine = &mut *guard;
            if now_ms.saturating_sub(engine.disk_checked_ms) >= DISK_EVERY_MS {
                engine.disk_checked_ms = now_ms;
                let needs_disk = engine.rules.values().any(|c| {
                    c.rule.enabled
                        && c.rule.target.host == Some(crate::model::alerts::HostMetric::DiskUsedPct)
                });
                if needs_disk {
                    engine.disk_pct = super::collector::disks::fullest_used_pct();
                }
            }
            if engine.rules.values().any(|c| c.rule.enabled && c.rule.target.vitals.is_some()) {
                let totals = self.vitals_totals();
                engine.vitals.push(now_ms, totals);
            }
            let enabled: Vec<(&Rule, Option<&Pattern>)> = engine
                .rules
                .values()
                .filter(|c| c.rule.enabled)
                .map(|c| (&c.rule, c.pattern.as_ref()))
                .collect();
            let due = Due::since(engine.last_eval_ms.filter(|&t| t < now_ms), now_ms);
            engine.last_eval_ms = Some(now_ms);
            let scratch = std::mem::take(&mut engine.scratch);
            let mut ctx = Context::new(now_ms, system, engine.disk_pct, &self.app, &engine.vitals)
                .judging(due)
                .reusing(scratch);
            ctx.prepare(&enabled);
            let instances = &mut engine.instances;
            let silences = &engine.silences;
            out.next_event = engine.next_event;
            // Room for as many writes as the last evaluation made: in a storm, hundreds, and
            // the list grown from nothing was a twelfth of recording them.
            out.writes.reserve(engine.last_writes);
            let mut seen = Vec::new();
            for (rule, pattern) in &enabled {
                let rule_hash = key_hash(&rule.name);
                ctx.observe_into(rule, *pattern, &mut seen);
                for (i, s) in seen.iter().enumerate() {
                    if i % LOOK_AHEAD == 0 {
                        let ahead = seen.iter().skip(i).take(LOOK_AHEAD);
                        look_ahead(instances, ahead.map(|s| instance_key_of(rule_hash, s.hash)));
                    }
                    let id = instance_key_of(rule_hash, s.hash);
                    let (transition, idle) = match instances.get_mut(&id) {
                        Some(instance) => {
                            // Seen this tick (the sweep below skips it).
                            instance.last_seen_ms = now_ms;
                            let t = engine::evaluate(
                                rule,
                                &mut instance.st,
                                s.observation,
                                now_ms,
                                self.flap,
                            );
                            (t, instance.st.is_idle())
                        }
                        None => {
                            if matches!(s.observation, Observation::NoData) {
                                continue;
                            }
                            // Only a series that breaches (or starts to) gets an instance:
                            // healthy series cost nothing to hold.
                            let mut st = InstanceState::default();
                            let t =
                                engine::evaluate(rule, &mut st, s.observation, now_ms, self.flap);
                            if t.is_none() && st.is_idle() {
                                continue;
                            }
                            if instances.len() >= MAX_INSTANCES {
                                self.stats.skipped_instances.fetch_add(1, Ordering::Relaxed);
                                continue;
                            }
                            let instance = Instance {
                                last_seen_ms: now_ms,
                                ..Instance::new(
                                    (&rule.name, rule_hash),
                                    (s.series, s.hash),
                                    s.labels(),
                                    st,
                                )
                            };
                            instances.insert(id, instance);
                            (t, false)
                        }
                    };
                    if let Some(t) = transition {
                        let Some(instance) = instances.get_mut(&id) else { continue };
                        changed = true;
                        record(id, instance, rule, t, now_ms, silences, &mut out);
                    } else if idle && instances.remove(&id).is_some() {
                        // Back to a fresh state: forgotten, in memory and in the store.
                        out.writes.push(AlertWrite::DeleteInstance { id: id_text(id) });
                    }
                }
            }
            engine.scratch = ctx.into_scratch();
            // Instances whose series was due but not seen: no data; of rules gone or disabled:
            // resolved.
            // The sweep visits every instance as it stays: it also counts them for the header
            // (those it lets go are resolved or inactive, which the header does not count).
            let rules = RulesIndex::new(&engine.rules);
            let mut gone = Vec::new();
            // Firing alerts whose silence has ended since it held back their notice.
            let mut unsilenced = Vec::new();
            let notify = out.notify;
            let mut count_in = |tally: &mut Tally, instance: &Instance| {
                if let Some(c) = rules.of(instance) {
                    let silenced = tally.add(instance, &c.rule, silences, now_ms);
                    let withheld = instance.st.withheld && instance.st.state.is_active();
                    if notify && withheld && silenced == Some(None) {
                        unsilenced.push(instance_key_of(instance.rule_hash, instance.key_hash));
                    }
                }
            };
            for (id, instance) in instances.iter_mut() {
                if instance.last_seen_ms == now_ms {
                    // Resolved instances of live series also leave the list after a while.
                    if instance.st.state == AlertState::Resolved
                        && now_ms.saturating_sub(instance.st.since_ms) >= RESOLVED_SHOWN_MS
                    {
                        gone.push(*id);
                    } else {
                        count_in(&mut tally, instance);
                    }
                    continue;
                }
                let compiled = rules.of(instance).filter(|c| c.rule.enabled);
                if compiled.is_some_and(|c| !due.window(c.window, instance.key_hash)) {
                    count_in(&mut tally, instance);
                    continue;
                }
                let rule = compiled.map(|c| &c.rule);
                let transition = match rule {
                    Some(rule) => engine::evaluate(
                        rule,
                        &mut instance.st,
                        Observation::NoData,
                        now_ms,
                        self.flap,
                    ),
                    None => retire(&mut instance.st, now_ms),
                };
                if let Some(t) = transition {
                    changed = true;
                    let fallback;
                    let rule = match rule {
                        Some(r) => r,
                        None => {
                            fallback =
                                rules.of(instance).map(|c| c.rule.clone()).unwrap_or_else(|| {
                                    let name = &instance.names.rule;
                                    let mut r = Rule::new(name, Default::default());
                                    r.summary = format!("rule {name} was removed");
                                    r
                                });
                            &fallback
                        }
                    };
                    record(*id, instance, rule, t, now_ms, silences, &mut out);
                }
                let idle = now_ms.saturating_sub(instance.st.since_ms.max(instance.last_seen_ms));
                let forget = match instance.st.state {
                    AlertState::Inactive => rule.is_none() || idle >= GONE_MS,
                    AlertState::Resolved => {
                        now_ms.saturating_sub(instance.st.since_ms) >= RESOLVED_SHOWN_MS
                    }
                    _ => false,
                };
                if forget {
                    gone.push(*id);
                } else {
                    count_in(&mut tally, instance);
                }
            }
            for id in unsilenced {
                let Some(instance) = instances.get_mut(&id) else { continue };
                let Some(compiled) = rules.of(instance) else { continue };
                let st = &instance.st;
                let t = Transition {
                    from: st.state,
                    to: st.state,
                    severity: st.severity,
                    value: st.value,
                    threshold: None,
                    note: "silence ended",
                    notify: true,
                };
                changed = true;
                record(id, instance, &compiled.rule, t, now_ms, silences, &mut out);
            }
            for id in gone {
                if let Some(instance) = instances.get_mut(&id) {
                    if instance.st.state == AlertState::Resolved {
                        // Kept as inactive (it remembers its flips) while its series lives.
                        instance.st.state = AlertState::Inactive;
                        changed = true;
                        if instance.last_seen_ms == now_ms {
                            out.writes.push(put_instance(instance));
                            continue;
                        }
                    }
                }
                if instances.remove(&id).is_some() {
                    out.writes.push(AlertWrite::DeleteInstance { id: id_text(id) });
                }
            }
            engine.next_event = out.next_event;
            engine.last_writes = out.writes.len();
            #[cfg(test)]
            {
                let (counts, _, total) = listed(engine, now_ms, 0);
                assert_eq!((tally.counts, tally.total), (counts, total), "the sweep's count");
            }
            // Published under the engine's lock, as every publication is: their numbers then
            // follow the order of the states they count (see `publish_locked`).
            let news =
                changed || engine.published.is_none_or(|(last, at)| now_ms >= at && last != tally);
            if news {
                self.publish_locked(engine, true, Some(tally), now_ms);
            } else if self.hub.alert_list_missing() {
                self.publish_locked(engine, false, None, now_ms);
            }
        }
        out.log_the_rest();
        self.stats.transitions.fetch_add(out.changes as u64, Ordering::Relaxed);
        let Outbox { mut writes, notices, .. } = out;
        let now_notices: Vec<_> = notices
            .into_iter()
            .flat_map(|n: Notice| {
                let dropped = self.notifier.send(&n, now_ms);
                dropped
                    .into_iter()
                    .map(move |attempt| AlertWrite::Attempt { event: n.event.id, attempt })
            })
            .collect();
        writes.extend(now_notices);
        self.store.write_alerts(writes);
        // Read within the wall-time span, so that the CPU time is never the larger. Both cover
        // publishing the alerts to live clients: that is part of what a change costs.
        let cpu_ended = thread_cpu_time();
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.stats.last_eval_us.store(micros, Ordering::Relaxed);
        if let (Some(from), Some(to)) = (cpu_started, cpu_ended) {
            let cpu = u64::try_from(to.saturating_sub(from).as_micros()).unwrap_or(u64::MAX);
            self.stats.last_eval_cpu_us.store(cpu, Ordering::Relaxed);
        }
        self.stats.evaluations.fetch_add(1, Ordering::Relaxed);
        self.stats.last_run_ms.store(crate::server::now_ms(), Ordering::Relaxed);
    }

    fn vitals_totals(&self) -> VitalsTotals {
        let ingest = self.app.ingest_stats();
        let s = &ingest.statsd;
        VitalsTotals {
            ws_tick_p99_ms: self.hub.stats().tick_to_last_send_p99_ms,
            statsd_dropped: s.dropped_by_cap
                + s.dropped_by_memory
                + s.dropped_too_old
                + s.dropped_future
                + s.dropped_saturated
                + s.dropped_by_kernel,
            statsd_malformed: s.malformed,
            store_write_errors: self.store.writer_stats().write_errors.load(Ordering::Relaxed),
            notification_failures: self.notifier.failures(),
            report_cache_lookups: self.reports.cache.lookups(),
        }
    }

    /// Sends the alerts now to every live client (the header badge and the Alerts page), as a
    /// change. The list is made only while a client wants it (the Alerts page); the others hear
    /// only the counts.
    pub fn publish(&self) {
        self.publish_locked(&mut self.lock(), true, None, crate::server::now_ms());
    }

    /// [`Self::publish`] of `engine`, whose lock the caller holds: every publication is made
    /// under it, so two (an evaluation and an acknowledgement, say) cannot count the alerts in
    /// one order and number their publications in the other, nor take the same number.
    /// `changed` false brings the list to clients that subscribed to it since the last
    /// publication, without telling the others of a change. `counted`: the counts as an
    /// evaluation's sweep just made them, enough when no client wants the list (otherwise the
    /// alerts are listed and counted again), at `now_ms`.
    fn publish_locked(
        &self,
        engine: &mut Engine,
        changed: bool,
        counted: Option<Tally>,
        now_ms: u64,
    ) {
        let list = self.hub.wants_alert_list();
        let (counts, alerts, total) = match counted {
            Some(Tally { counts, total }) if !list => (counts, Vec::new(), total),
            _ => {
                let limit = if list { crate::model::live::LIVE_ALERTS } else { 0 };
                listed(engine, now_ms, limit)
            }
        };
        if self.hub.publish_alerts(counts, list.then_some(alerts), total, changed) {
            engine.published = Some((Tally { counts, total }, now_ms));
        }
    }

    /// The engine's line in `/health`: down when evaluation stopped, degraded while a receiver's
    /// notifications fail for good.
    pub fn health(&self) -> (super::health::Status, String) {
        use super::health::Status;
        let last = self.stats.last_run_ms.load(Ordering::Relaxed);
        let now = crate::server::now_ms();
        let rules = self.lock().rules.values().filter(|c| c.rule.enabled).count();
        let failing: Vec<String> = self
            .notifier
            .stats()
            .into_iter()
            .filter(|r| r.failed > 0 && r.last_error.is_some())
            .map(|r| format!("{}: {}", r.receiver, r.last_error.unwrap_or_default()))
            .collect();
        if last > 0 && now.saturating_sub(last) > 30_000 {
            return (Status::Down, format!("no evaluation for {} s", (now - last) / 1000));
        }
        if !failing.is_empty() {
            return (Status::Degraded, format!("notifications failed: {}", failing.join("; ")));
        }
        let c = self.counts();
        (
            Status::Ok,
            format!("{rules} rules, {} firing, {} pending", c.critical + c.warning, c.pending),
        )
    }

    /// Firing and pending counts now.
    pub fn counts(&self) -> AlertCounts {
        listed(&self.lock(), crate::server::now_ms(), 0).0
    }

    /// Writes every instance's state (at shutdown: flips and timers since the last transition).
    pub fn persist_all(&self) {
        let engine = self.lock();
        let writes: Vec<AlertWrite> = engine.instances.values().map(put_instance).collect();
        drop(engine);
        self.store.write_alerts_waiting(writes);
    }
}

/// How many instances [`look_ahead`] reads at once.
const LOOK_AHEAD: usize = 16;

/// Reads the instances `ids` name (those held) before they are judged one by one. These
/// look-ups do not depend on each other, so the processor overlaps their cache misses; judged
/// one at a time, each instance's miss waits for the one before (an alert storm holds
/// thousands of instances, far more than the cache keeps between two evaluations).
fn look_ahead(
    instances: &HashMap<u64, Instance, foldhash::fast::FixedState>,
    ids: impl Iterator<Item = u64>,
) {
    let held =
        ids.filter_map(|id| instances.get(&id)).map(|i| i.last_seen_ms).fold(0, u64::wrapping_add);
    std::hint::black_box(held);
}

/// The CPU time the calling thread has used (`None` where the system cannot tell).
fn thread_cpu_time() -> Option<std::time::Duration> {
    use nix::time::{clock_gettime, ClockId};
    clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID).ok().map(std::time::Duration::from)
}

/// The transition of an instance whose rule is gone or disabled: resolved if it was active.
fn retire(st: &mut InstanceState, now_ms: u64) -> Option<Transition> {
    let from = st.state;
    let to = match from {
        AlertState::Firing | AlertState::Recovering => AlertState::Resolved,
        AlertState::Pending => AlertState::Inactive,
        _ => return None,
    };
    st.state = to;
    st.since_ms = now_ms;
    st.flapping = false;
    st.level = None;
    Some(Transition {
        from,
        to,
        severity: st.severity,
        value: st.value,
        threshold: None,
        note: "rule removed",
        notify: from.is_active(),
    })
}

fn put_instance(i: &Instance) -> AlertWrite {
    AlertWrite::PutInstance {
        id: Arc::clone(&i.names.id),
        rule: Arc::clone(&i.names.rule),
        series: Arc::clone(&i.names.key),
        labels: Arc::clone(&i.names.labels_json),
        state: Json::of(i.st.clone()),
        at_ms: i.st.since_ms,
    }
}

/// The labels of an instance with the severity `severity` (see [`Labels`]).
fn labels_of<'a>(i: &'a Instance, rule: &'a Rule, severity: Option<Severity>) -> Labels<'a> {
    Labels {
        series: &i.names.labels,
        rule: &rule.labels,
        alertname: &rule.name,
        severity: severity.map(Severity::as_str),
    }
}

/// The silence that holds `i`, an instance of `rule`, at `now_ms`.
fn silence_of(
    i: &Instance,
    rule: &Rule,
    silences: &BTreeMap<u64, HeldSilence>,
    now_ms: u64,
) -> Option<u64> {
    if silences.is_empty() {
        return None;
    }
    silenced_by(silences, &labels_of(i, rule, i.st.severity), now_ms)
}

fn silenced_by(
    silences: &BTreeMap<u64, HeldSilence>,
    labels: &Labels<'_>,
    now_ms: u64,
) -> Option<u64> {
    silences
        .values()
        .find(|held| {
            held.silence.active_at(now_ms)
                && held.silence.matchers.iter().zip(&held.patterns).all(|(m, pattern)| {
                    labels
                        .get(&m.label)
                        .is_some_and(|v| pattern.as_ref().is_some_and(|p| p.matches(v)))
                })
        })
        .map(|held| held.silence.id)
}

fn view(id: u64, i: &Instance, rule: &Rule, silenced: Option<u64>) -> AlertInstance {
    let labels = labels_of(i, rule, i.st.severity).to_map();
    let threshold = i.st.severity.and_then(|s| rule.threshold(s)).map(|t| t.raise());
    let series = i.names.series.to_string();
    AlertInstance {
        id: id_text(id),
        rule: rule.name.clone(),
        summary: render_summary(rule, &series, i.st.value, threshold),
        series,
        silenced_by: silenced,
        labels,
        state: i.st.state,
        severity: i.st.severity,
        value: i.st.value,
        threshold,
        since_ms: i.st.since_ms,
        active_since_ms: i.st.active_since_ms,
        flapping: i.st.flapping,
        acknowledged: i.st.acknowledged,
        unit: rule.target.unit().to_string(),
    }
}

/// The alerts firing now whose firing receivers heard of (silenced since or not: a receiver
/// that was sent one holds it until told it ended), with their runbooks.
fn still_firing(engine: &Engine) -> Vec<(AlertInstance, String)> {
    let rules = RulesIndex::new(&engine.rules);
    engine
        .instances
        .iter()
        .filter(|(_, i)| i.st.state.is_active() && !i.st.unheard)
        .filter_map(|(id, i)| {
            let rule = &rules.of(i)?.rule;
            Some((view(*id, i, rule, None), rule.runbook.clone()))
        })
        .collect()
}

/// The alerts that are not inactive: their counts by state and severity (silenced ones left
/// out), the first `limit` of them worst first ([`listing::Place`]), and how many there are.
fn listed(engine: &Engine, now_ms: u64, limit: usize) -> (AlertCounts, Vec<AlertInstance>, usize) {
    let mut tally = Tally::default();
    let mut top = listing::Top::new(limit);
    let rules = RulesIndex::new(&engine.rules);
    for (id, i) in &engine.instances {
        let Some(rule) = rules.of(i).map(|c| &c.rule) else { continue };
        let Some(silenced) = tally.add(i, rule, &engine.silences, now_ms) else { continue };
        let place = listing::Place::new(i.st.state, i.st.severity, i.st.since_ms, *id);
        top.offer(place, || (*id, i, rule, silenced));
    }
    let Tally { counts, total } = tally;
    let alerts = top
        .into_sorted()
        .into_iter()
        .map(|(id, i, rule, silenced)| view(id, i, rule, silenced))
        .collect();
    (counts, alerts, total)
}

/// Most transitions one evaluation logs one line each for; beyond, one line counts the rest
/// (an alert storm must not flood the log nor spend the evaluation formatting it; every
/// transition is in the history either way).
const LOGGED_PER_EVALUATION: usize = 20;

/// What one evaluation hands on: store writes, notifications, and how many transitions it
/// logged.
struct Outbox {
    writes: Vec<AlertWrite>,
    notices: Vec<Notice>,
    /// Whether any receiver is configured (otherwise no notice is built).
    notify: bool,
    /// The id the next event gets.
    next_event: u64,
    changes: usize,
}

impl Outbox {
    fn new(notify: bool) -> Self {
        Outbox { writes: Vec::new(), notices: Vec::new(), notify, next_event: 0, changes: 0 }
    }

    /// One line for the transitions past [`LOGGED_PER_EVALUATION`].
    fn log_the_rest(&self) {
        if let Some(more) = self.changes.checked_sub(LOGGED_PER_EVALUATION).filter(|&n| n > 0) {
            tracing::info!(
                more,
                "More alerts changed at this evaluation (see /api/v1/alerts/history)."
            );
        }
    }
}

/// Stores a transition, and queues its notification unless silenced. The end of an alert
/// whose firing receivers heard of is sent silenced or not (a receiver such as Alertmanager
/// would otherwise hold it firing); the firing of one a silence held back is not, nor its end.
fn record(
    id: u64,
    instance: &mut Instance,
    rule: &Rule,
    t: Transition,
    now_ms: u64,
    silences: &BTreeMap<u64, HeldSilence>,
    out: &mut Outbox,
) {
    let silenced = silence_of(instance, rule, silences, now_ms);
    let row = EventRow {
        id: out.next_event,
        at_ms: now_ms,
        rule: Arc::clone(&instance.names.rule),
        instance: Arc::clone(&instance.names.id),
        series: Arc::clone(&instance.names.series),
        labels: Json::of(OwnedLabels {
            series: Arc::clone(&instance.names.labels),
            rule: rule.labels.clone(),
            alertname: if *instance.names.rule == *rule.name {
                Arc::clone(&instance.names.rule)
            } else {
                rule.name.as_str().into()
            },
            severity: instance.st.severity.map(Severity::as_str),
        }),
        from: t.from,
        to: t.to,
        severity: t.severity,
        value: t.value,
        threshold: t.threshold,
        note: t.note,
    };
    out.next_event += 1;
    out.changes += 1;
    if out.changes <= LOGGED_PER_EVALUATION {
        tracing::info!(rule = %rule.name, series = %row.series, from = t.from.as_str(), to = t.to.as_str(), note = t.note, "Alert changed.");
    }
    let event_id = row.id;
    let ends = !t.to.is_active();
    let st = &mut instance.st;
    let heard = silenced.is_none() || (ends && !st.unheard);
    if t.notify {
        if ends || heard {
            (st.withheld, st.unheard) = (false, false);
        } else {
            st.withheld = true;
            // Became active silenced (an escalation of one heard firing stays heard).
            st.unheard |= !t.from.is_active();
        }
    }
    let notice = (t.notify && heard && out.notify).then(|| Notice {
        event: row.event(labels_of(instance, rule, instance.st.severity).to_map()),
        alert: view(id, instance, rule, None),
        runbook: rule.runbook.clone(),
    });
    let put = put_instance(instance);
    out.writes.push(AlertWrite::Event(Box::new(row)));
    out.writes.push(put);
    if let Some(notice) = notice {
        out.notices.push(notice);
    } else if let Some(silence) = silenced.filter(|_| t.notify && !heard) {
        out.writes.push(AlertWrite::Attempt {
            event: event_id,
            attempt: crate::model::alerts::NotificationAttempt {
                at_ms: now_ms,
                receiver: "all".to_string(),
                attempt: 0,
                outcome: "silenced".to_string(),
                detail: format!("silence {silence}"),
            },
        });
    }
}

/// The alerts that are not inactive, counted for the header.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Tally {
    /// Unsilenced firing, recovering and pending alerts by severity.
    counts: AlertCounts,
    /// Every alert that is not inactive, silenced or not.
    total: usize,
}

impl Tally {
    /// Counts `i`, an instance of `rule`: `None` when it is inactive (not counted), else the
    /// silence that holds it, if any.
    fn add(
        &mut self,
        i: &Instance,
        rule: &Rule,
        silences: &BTreeMap<u64, HeldSilence>,
        now_ms: u64,
    ) -> Option<Option<u64>> {
        if i.st.state == AlertState::Inactive {
            return None;
        }
        self.total += 1;
        let silenced = silence_of(i, rule, silences, now_ms);
        if silenced.is_none() {
            let c = &mut self.counts;
            match (i.st.state, i.st.severity) {
                (AlertState::Firing | AlertState::Recovering, Some(Severity::Critical)) => {
                    c.critical += 1;
                }
                (AlertState::Firing | AlertState::Recovering, _) => c.warning += 1,
                (AlertState::Pending, _) => c.pending += 1,
                _ => {}
            }
        }
        Some(silenced)
    }
}

/// Evaluates on every tick of the bus until shutdown, then stores every instance's state.
pub async fn run(alerts: Arc<Alerts>, mut ticks: Subscription, shutdown: CancellationToken) {
    loop {
        let tick = tokio::select! {
            () = shutdown.cancelled() => break,
            tick = ticks.next() => match tick {
                Some(tick) => tick,
                None => break,
            },
        };
        let alerts = Arc::clone(&alerts);
        let _ = tokio::task::spawn_blocking(move || {
            alerts.evaluate(&tick.sample.system, tick.sample.at_ms);
        })
        .await;
    }
    let alerts = Arc::clone(&alerts);
    let _ = tokio::task::spawn_blocking(move || alerts.persist_all()).await;
}

#[cfg(test)]
mod tests;
