//! [`ClusterService`]: every `cluster.sync_interval`, one pipelined exchange with Redis sends this
//! instance's new admissions per client and reads the cluster totals back, marks the instance as
//! seen, renews or seeks the lease and reads the cluster's rate, and passes latency summaries to
//! the lease holder. When Redis fails the limiter falls back to local counts at once; the loop
//! retries with backoff and resumes sharing when Redis answers.
//!
//! Keys (all under `cluster.key_prefix`, all expiring):
//! - `rl:<window>:<client>`: requests admitted cluster-wide for a client in one fixed window;
//!   lives two windows and a second.
//! - `instances`: sorted set, instance name → last sync (Unix ms).
//! - `lease`: the instance deciding the adaptive rate; lives one evaluation interval unless renewed.
//! - `rate`: the decider's rate. `lat:<instance>`: an instance's latest latency summary.

use super::{summary, Cluster};
use crate::events::{Event, EventLog};
use crate::limit::RateLimiter;
use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{from_redis_value, IntoConnectionInfo, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// An instance counts as seen lately if it synced within this time.
const SEEN_LATELY_MS: u64 = 3000;
/// Longest wait between two reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Renews the lease if held, takes it if free, and publishes the holder's rate; answers the
/// holder and the cluster rate. KEYS: lease, rate. ARGV: instance, lease ms, rate, rate ms.
const LEASE_SCRIPT: &str = r"
local holder = redis.call('GET', KEYS[1])
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])
  holder = ARGV[1]
elseif holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
if holder == ARGV[1] then
  redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
end
return {holder, redis.call('GET', KEYS[2])}
";

/// Gives the lease up if this instance holds it. KEYS: lease. ARGV: instance.
const RELEASE_SCRIPT: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

/// The Pingora background service of cluster mode.
pub struct ClusterService {
    pub cluster: Arc<Cluster>,
    pub limiter: Arc<RateLimiter>,
    pub events: Arc<EventLog>,
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// What one exchange learnt.
struct Reply {
    instances: Vec<String>,
    holder: Option<String>,
    rate: Option<f64>,
    latency: Vec<(String, Option<String>)>,
}

impl ClusterService {
    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.cluster.settings.key_prefix)
    }

    /// The Redis client, with the password from `cluster.redis_password_file` if set.
    fn client(&self) -> redis::RedisResult<redis::Client> {
        let settings = &self.cluster.settings;
        let url = settings
            .redis_url
            .as_ref()
            .ok_or((redis::ErrorKind::Client, "cluster.redis_url is unset"))?;
        let mut info = url.expose().into_connection_info()?;
        if let Some(password) = &settings.password {
            let redis = info
                .redis_settings()
                .clone()
                .set_password(password.expose());
            info = info.set_redis_settings(redis);
        }
        match &settings.ca {
            // SECURITY: a private CA verifies the Redis server (no silent fallback to an
            // unverified connection); the system roots are not consulted then.
            Some(ca) => redis::Client::build_with_tls(
                info,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(ca.clone()),
                },
            ),
            None => redis::Client::open(info),
        }
    }

    /// How long one exchange may take before Redis counts as down.
    fn exchange_timeout(&self) -> Duration {
        (self.cluster.settings.sync_interval * 5)
            .clamp(Duration::from_millis(250), Duration::from_secs(2))
    }

    /// One pipelined round trip.
    async fn exchange(&self, con: &mut ConnectionManager) -> redis::RedisResult<()> {
        let cluster = &self.cluster;
        let name = &cluster.settings.instance_name;
        let now = unix_ms();
        let window_ms = ((self.limiter.window_secs() * 1000.0).round() as u64).max(1);
        let (window, elapsed) = (now / window_ms, (now % window_ms) as f64 / window_ms as f64);
        let deltas = cluster.table.drain(window);
        let (seen_before, send_latency, holds) = {
            let mut state = cluster.state();
            let peers: Vec<String> = state
                .instances
                .iter()
                .filter(|i| *i != name)
                .cloned()
                .collect();
            (peers, state.local_latency.take(), cluster.holds_lease())
        };

        let mut pipe = redis::pipe();
        for delta in &deltas {
            let key = self.key(&format!("rl:{}:{:x}", delta.window, delta.client.id()));
            if delta.count > 0 {
                pipe.cmd("INCRBY").arg(&key).arg(delta.count);
                pipe.cmd("PEXPIRE")
                    .arg(&key)
                    .arg(2 * window_ms + 1000)
                    .ignore();
            } else {
                pipe.cmd("GET").arg(&key);
            }
        }
        let instances = self.key("instances");
        pipe.cmd("ZADD").arg(&instances).arg(now).arg(name).ignore();
        pipe.cmd("ZREMRANGEBYSCORE")
            .arg(&instances)
            .arg("-inf")
            .arg(now.saturating_sub(SEEN_LATELY_MS))
            .ignore();
        pipe.cmd("PEXPIRE").arg(&instances).arg(60_000).ignore();
        pipe.cmd("ZRANGE").arg(&instances).arg(0).arg(-1);
        let lease_ms = cluster.lease_ttl.as_millis().max(1) as u64;
        if cluster.adaptive {
            if let Some((seq, counts)) = &send_latency {
                pipe.cmd("SET")
                    .arg(self.key(&format!("lat:{name}")))
                    .arg(summary::encode(*seq, counts))
                    .arg("PX")
                    .arg(3 * lease_ms)
                    .ignore();
            }
            pipe.cmd("EVAL")
                .arg(LEASE_SCRIPT)
                .arg(2)
                .arg(self.key("lease"))
                .arg(self.key("rate"))
                .arg(name)
                .arg(lease_ms)
                .arg(self.limiter.rate().to_string())
                .arg((10 * lease_ms).max(60_000));
            if holds && !seen_before.is_empty() {
                let mut mget = redis::cmd("MGET");
                for peer in &seen_before {
                    mget.arg(self.key(&format!("lat:{peer}")));
                }
                pipe.add_command(mget);
            }
        }

        let started = Instant::now();
        let values: Vec<Value> = pipe.query_async(con).await?;
        let took = started.elapsed();
        let mut values = values.into_iter();
        let mut next = || {
            values
                .next()
                .ok_or((redis::ErrorKind::Parse, "short reply"))
        };
        let mut totals = Vec::with_capacity(deltas.len());
        for delta in &deltas {
            let total: Option<u64> = from_redis_value(next()?)?;
            totals.push((delta.client, total.unwrap_or(0)));
        }
        let mut reply = Reply {
            instances: from_redis_value(next()?)?,
            holder: None,
            rate: None,
            latency: Vec::new(),
        };
        if cluster.adaptive {
            let (holder, rate): (Option<String>, Option<String>) = from_redis_value(next()?)?;
            reply.holder = holder;
            reply.rate = rate.and_then(|r| r.parse().ok());
            if holds && !seen_before.is_empty() {
                let texts: Vec<Option<String>> = from_redis_value(next()?)?;
                reply.latency = seen_before.into_iter().zip(texts).collect();
            }
        }
        cluster.table.apply(window, elapsed, &totals);
        self.learn(reply, took);
        Ok(())
    }

    /// Applies what an exchange learnt: instances, the lease, the cluster rate, peers' latency.
    fn learn(&self, reply: Reply, took: Duration) {
        let cluster = &self.cluster;
        let name = &cluster.settings.instance_name;
        let holds = reply.holder.as_deref() == Some(name.as_str());
        let was = cluster.holds_lease.swap(holds, Ordering::Relaxed);
        if holds && !was {
            self.events.record(Event::ClusterLeaseTaken {
                instance: name.clone(),
            });
        }
        if !holds {
            let current = self.limiter.rate();
            if let Some(rate) = reply.rate.filter(|r| r.is_finite() && *r > 0.0) {
                if (rate - current).abs() > 1e-9 {
                    self.limiter.set_rate(rate);
                    self.events.record(Event::RateChanged {
                        pool: None,
                        from: current,
                        to: rate,
                        reason: format!(
                            "decided by {}",
                            reply.holder.as_deref().unwrap_or("the cluster")
                        ),
                    });
                }
            }
        }
        let peers = reply.instances.iter().filter(|i| *i != name).count();
        cluster.table.set_up(peers);
        let mut state = cluster.state();
        state.instances = reply.instances;
        state.lease_holder = reply.holder;
        state.last_success = Some(Instant::now());
        state.last_exchange = Some(took);
        for (peer, text) in reply.latency {
            match text.as_deref().and_then(summary::decode) {
                Some(window) => state.remote_latency.insert(peer, window),
                None => state.remote_latency.remove(&peer),
            };
        }
    }

    /// The sync failed: local limits from now on; said once per outage.
    fn went_down(&self, error: &redis::RedisError, outage: &mut bool) {
        let cluster = &self.cluster;
        cluster.sync_errors.fetch_add(1, Ordering::Relaxed);
        cluster.table.set_down();
        cluster.holds_lease.store(false, Ordering::Relaxed);
        if !*outage {
            *outage = true;
            self.events.record(Event::ClusterRedisDown {
                url: self.shown_url(),
                error: self.scrub(&error.to_string()),
            });
        }
    }

    fn shown_url(&self) -> String {
        self.cluster
            .settings
            .redis_url
            .as_ref()
            .map(|u| u.to_string())
            .unwrap_or_default()
    }

    /// SECURITY: an error text must not carry the password into the logs.
    fn scrub(&self, text: &str) -> String {
        match &self.cluster.settings.password {
            Some(secret) if !secret.expose().is_empty() => text.replace(secret.expose(), "***"),
            _ => text.to_string(),
        }
    }

    /// Gives the lease up on shutdown, so that another instance decides at once.
    async fn release(&self, con: &mut ConnectionManager) {
        if !self.cluster.holds_lease() {
            return;
        }
        let release = redis::cmd("EVAL")
            .arg(RELEASE_SCRIPT)
            .arg(1)
            .arg(self.key("lease"))
            .arg(&self.cluster.settings.instance_name)
            .clone();
        let _ =
            tokio::time::timeout(self.exchange_timeout(), release.query_async::<Value>(con)).await;
    }
}

#[async_trait]
impl BackgroundService for ClusterService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let url = self.shown_url();
        let timeout = self.exchange_timeout();
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(MAX_BACKOFF);
        let manager = self
            .client()
            .and_then(|client| ConnectionManager::new_lazy_with_config(client, config));
        let mut con = match manager {
            Ok(con) => con,
            Err(e) => {
                log::error!(
                    "cluster: no Redis client for {url} ({}); limits stay local",
                    self.scrub(&e.to_string())
                );
                return;
            }
        };
        let interval = self.cluster.settings.sync_interval;
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let (mut outage, mut first) = (false, true);
        let (mut backoff, mut retry_at) = (interval, Instant::now());
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = shutdown.changed() => {
                    self.release(&mut con).await;
                    log::info!("cluster sync stopped");
                    return;
                }
            }
            if outage && Instant::now() < retry_at {
                continue;
            }
            let result = match tokio::time::timeout(timeout, self.exchange(&mut con)).await {
                Ok(result) => result,
                Err(_) => Err((redis::ErrorKind::Io, "timed out").into()),
            };
            match result {
                Ok(()) => {
                    backoff = interval;
                    if outage {
                        outage = false;
                        self.events
                            .record(Event::ClusterRedisUp { url: url.clone() });
                    } else if first {
                        log::info!(
                            "cluster: sharing limits through Redis at {url} as {}",
                            self.cluster.settings.instance_name
                        );
                    }
                }
                Err(e) => {
                    self.went_down(&e, &mut outage);
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    retry_at = Instant::now() + backoff;
                }
            }
            first = false;
        }
    }
}
