//! Hot reload triggers: SIGHUP, or a change of the config file's content (or of the snooze file it
//! names) seen by polling. Polling, not inotify: a Kubernetes ConfigMap is updated by swapping a
//! symlink, which file-event watchers miss unless they watch the directory; reading two small files
//! every `service.config_poll_ms` is cheap and sees every kind of update.

use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::time::Duration;

use crate::config::Config;

/// Command-line and environment settings laid over the file (`run --brokers …`): applied to every
/// reloaded file as at start, so they are not taken for changes.
pub type Overrides = Box<dyn Fn(&mut Config) + Send>;

pub struct Watch {
    path: PathBuf,
    overrides: Overrides,
    /// The snooze file named by the config last loaded.
    snooze_file: String,
    seen: u64,
    poll: tokio::time::Interval,
    #[cfg(unix)]
    hangup: Option<tokio::signal::unix::Signal>,
}

/// Content of the config and its snooze file (missing files hash as empty: their errors surface
/// when the reload reads them).
fn fingerprint(path: &PathBuf, snooze_file: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    std::fs::read(path).unwrap_or_default().hash(&mut h);
    if !snooze_file.is_empty() {
        std::fs::read(snooze_file).unwrap_or_default().hash(&mut h);
    }
    h.finish()
}

impl Watch {
    /// Must be called inside the runtime (it installs the SIGHUP handler).
    pub fn new(path: PathBuf, cfg: &Config, overrides: Overrides) -> Self {
        let snooze_file = cfg.alerts.snooze_file.clone();
        let mut poll = tokio::time::interval(Duration::from_millis(cfg.service.config_poll_ms.max(100)));
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Watch {
            seen: fingerprint(&path, &snooze_file),
            path,
            overrides,
            snooze_file,
            poll,
            #[cfg(unix)]
            hangup: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
                .map_err(|e| tracing::warn!(error = %e, "cannot handle SIGHUP: reload on file change only"))
                .ok(),
        }
    }

    /// The file as a reload sees it: parsed, overridden as at start, validated.
    pub fn load(&self) -> Result<Config, crate::config::ConfigError> {
        let mut cfg = Config::load(&self.path)?;
        (self.overrides)(&mut cfg);
        cfg.validate()?;
        Ok(cfg)
    }

    /// Resolves with the reason when a reload is due, `None` on a poll that found nothing new.
    /// Cancel-safe (the interval and the signal stream keep their state across `select!` turns).
    pub async fn next(&mut self) -> Option<&'static str> {
        #[cfg(unix)]
        if let Some(h) = self.hangup.as_mut() {
            tokio::select! {
                _ = h.recv() => return Some("SIGHUP"),
                _ = self.poll.tick() => {}
            }
        } else {
            self.poll.tick().await;
        }
        #[cfg(not(unix))]
        self.poll.tick().await;
        let now = fingerprint(&self.path, &self.snooze_file);
        (now != self.seen).then_some("file change")
    }

    /// After a reload attempt (applied or not): the content it read is now the baseline, so a
    /// rejected file is not retried every poll, only when it changes again.
    pub fn settle(&mut self, snooze_file: &str) {
        snooze_file.clone_into(&mut self.snooze_file);
        self.seen = fingerprint(&self.path, &self.snooze_file);
    }
}
