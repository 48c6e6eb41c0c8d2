//! `netdev`: link changes of the network interfaces in the agent's network namespace (admin
//! up/down, carrier up/down) as log events with the driver, its version and firmware, and a
//! counter per interface and change; from rtnetlink's link notifications (RTMGRP_LINK).
//!
//! The first run takes the current state of every interface as its baseline and reports nothing
//! for it. The state is kept across runs: a run restarted after a failure (the notification
//! socket overflowed, say) dumps the links again and reports what changed while it was down.
//! Interfaces that appear are a baseline; those removed are forgotten.

mod driver;
mod link;

use crate::framework::{
    section_tracer_methods, RunError, Tracer, TracerContext, Unsupported, UserCounter,
};
use crate::kernel::KernelEnv;
use crate::telemetry::Telemetry;
use anyhow::Context as _;
use futures::future::BoxFuture;
use futures::{StreamExt, TryStreamExt};
use huatuo_config::{Config, NetdevConfig};
use huatuo_semconv::net as names;
use link::{changes, Link};
use opentelemetry::KeyValue;
use regex::RegexSet;
use rtnetlink::packet_core::NetlinkPayload;
use rtnetlink::packet_route::link::LinkMessage;
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::sys::AsyncSocket as _;
use rtnetlink::MulticastGroup;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

pub const NAME: &str = "netdev_events";

/// Receive buffer of the notification socket: a burst of link changes (hundreds of containers
/// starting) must not overflow it.
const SOCKET_BUFFER_BYTES: usize = 4 << 20;

pub struct Netdev {
    changes: UserCounter,
    /// Last known state of each watched interface, by index; None before the first dump.
    links: Mutex<Option<HashMap<u32, Link>>>,
}

impl Default for Netdev {
    fn default() -> Self {
        Self {
            changes: UserCounter::new(
                names::NETDEV_LINK_CHANGES_TOTAL,
                "Link changes of network interfaces, by interface, driver and change",
                "{change}",
            ),
            links: Mutex::new(None),
        }
    }
}

fn section(config: &Config) -> &NetdevConfig {
    &config.tracers.netdev_events
}

/// Which interfaces are watched.
struct Selection {
    include: RegexSet,
    exclude: RegexSet,
}

impl Selection {
    fn new(config: &NetdevConfig) -> anyhow::Result<Self> {
        let set = |patterns: &[huatuo_config::InterfacePattern], key: &str| {
            RegexSet::new(patterns.iter().map(|p| p.full_match()))
                .with_context(|| format!("tracers.netdev_events.{key}"))
        };
        Ok(Self {
            include: set(&config.include, "include")?,
            exclude: set(&config.exclude, "exclude")?,
        })
    }

    fn watches(&self, name: &str) -> bool {
        (self.include.is_empty() || self.include.is_match(name)) && !self.exclude.is_match(name)
    }
}

impl Tracer for Netdev {
    section_tracer_methods!(NAME, section);

    fn probe(&self, _kernel: &KernelEnv) -> Result<(), Unsupported> {
        Ok(())
    }

    fn register_metrics(&self, telemetry: &Telemetry) {
        self.changes.get(&telemetry.meter);
    }

    fn run(self: Arc<Self>, ctx: TracerContext) -> BoxFuture<'static, Result<(), RunError>> {
        Box::pin(async move { self.follow(&ctx).await.map_err(RunError::Failed) })
    }
}

impl Netdev {
    fn lock_links(&self) -> std::sync::MutexGuard<'_, Option<HashMap<u32, Link>>> {
        self.links.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn follow(&self, ctx: &TracerContext) -> anyhow::Result<()> {
        let selection = Selection::new(section(&ctx.config))?;
        // Subscribed before the dump, so no change falls between the two.
        let (mut connection, handle, mut notifications) =
            rtnetlink::new_multicast_connection(&[MulticastGroup::Link])
                .context("opening an rtnetlink socket for link notifications")?;
        connection
            .socket_mut()
            .socket_mut()
            .set_rx_buf_sz(SOCKET_BUFFER_BYTES)
            .context("sizing the rtnetlink socket's receive buffer")?;
        let connection = tokio::spawn(connection);
        let _stop_connection = AbortOnDrop(connection);

        let dump: Vec<LinkMessage> = handle
            .link()
            .get()
            .execute()
            .try_collect()
            .await
            .context("dumping the network interfaces")?;
        let counter = self.changes.get(&ctx.telemetry.meter);
        let on_link = |message: &LinkMessage| {
            let Some(link) = Link::from_message(message) else {
                return;
            };
            let mut guard = self.lock_links();
            let links = guard.get_or_insert_with(HashMap::new);
            if !selection.watches(&link.name) {
                // Renamed out of the selection: no longer ours.
                links.remove(&link.index);
                return;
            }
            let before = links.insert(link.index, link.clone());
            let Some(before) = before else { return };
            let found = changes(&before, &link);
            if found.is_empty() {
                return;
            }
            drop(guard);
            let driver = driver::driver_info(&link.name);
            for change in &found {
                counter.add(
                    1,
                    &[
                        KeyValue::new(names::NETWORK_INTERFACE_NAME, link.name.clone()),
                        KeyValue::new(names::NETDEV_DRIVER, driver.driver.clone()),
                        KeyValue::new(names::NETDEV_LINK_CHANGE_KIND, change.as_str()),
                    ],
                );
            }
            ctx.telemetry
                .emit(link::to_event(&link, &found, &driver, SystemTime::now()));
        };
        let present: Vec<u32> = dump.iter().map(|m| m.header.index).collect();
        for message in &dump {
            on_link(message);
        }
        // Interfaces removed while no run was watching.
        if let Some(links) = self.lock_links().as_mut() {
            links.retain(|index, _| present.contains(index));
        }
        tracing::info!(
            tracer = NAME,
            interfaces = self.lock_links().as_ref().map_or(0, HashMap::len),
            "attached"
        );

        loop {
            tokio::select! {
                biased;
                _ = ctx.cancel.cancelled() => return Ok(()),
                notification = notifications.next() => {
                    let Some((message, _)) = notification else {
                        anyhow::bail!("the rtnetlink connection closed (socket error or overflow)");
                    };
                    ctx.stats.record_received();
                    match message.payload {
                        NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link)) => {
                            on_link(&link);
                        }
                        NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelLink(link)) => {
                            if let Some(links) = self.lock_links().as_mut() {
                                links.remove(&link.header.index);
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
    }
}

/// Stops the spawned connection task when the run ends, however it ends.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclude_wins_over_include_and_patterns_match_whole_names() {
        let mut config = NetdevConfig::default();
        let patterns = |list: &[&str]| {
            list.iter()
                .map(|p| huatuo_config::InterfacePattern::try_from(p.to_string()).unwrap())
                .collect()
        };
        let defaults = Selection::new(&config).unwrap();
        assert!(defaults.watches("eth0"));
        assert!(!defaults.watches("lo"));
        assert!(!defaults.watches("veth1a2b"));
        assert!(defaults.watches("lo0"), "full match only");

        config.include = patterns(&["eth[0-9]+", "bond.*"]);
        config.exclude = patterns(&["bond9"]);
        let chosen = Selection::new(&config).unwrap();
        assert!(chosen.watches("eth1"));
        assert!(!chosen.watches("xeth1"));
        assert!(chosen.watches("bond0"));
        assert!(!chosen.watches("bond9"));
    }
}
