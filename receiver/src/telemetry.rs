//! The OTel side of the agent: the host resource, the SDK providers, the agent's own logging, and
//! the one place where decoded records become log events (with attribution applied).

use crate::attribution::CgroupResolver;
use huatuo_config::Config;
use huatuo_exporters::Providers;
use huatuo_semconv::{
    agent as agent_names, container as container_names, net as net_names, resource as res,
};
use opentelemetry::logs::{AnyValue, LogRecord, Logger, LoggerProvider, Severity};
use opentelemetry::metrics::{Meter, MeterProvider};
use opentelemetry::KeyValue;
use opentelemetry_sdk::logs::SdkLogger;
use opentelemetry_sdk::Resource;
use std::time::SystemTime;

const SCOPE: &str = "huatuo-otel";

/// A kernel event ready to be exported: names come from `huatuo_semconv`, values from a decoder.
pub struct Event {
    pub name: &'static str,
    pub tracer: &'static str,
    pub time: SystemTime,
    pub severity: Severity,
    /// A short human-readable summary; the data is in the attributes.
    pub body: String,
    pub attributes: Vec<(&'static str, AnyValue)>,
    /// Cgroup (v2 id) of the task or socket concerned, for attribution.
    pub cgroup_id: Option<u64>,
}

/// Handles shared by all tracers to emit telemetry.
pub struct Telemetry {
    pub meter: Meter,
    logger: SdkLogger,
    cgroups: CgroupResolver,
}

impl Telemetry {
    pub fn new(providers: &Providers) -> Self {
        Self {
            meter: providers.metrics.meter(SCOPE),
            logger: providers.logs.logger(SCOPE),
            cgroups: CgroupResolver::detect(),
        }
    }

    /// Emits one event as an OTel log record with `EventName` set.
    pub fn emit(&self, event: Event) {
        let mut record = self.logger.create_log_record();
        record.set_event_name(event.name);
        record.set_timestamp(event.time);
        record.set_observed_timestamp(SystemTime::now());
        record.set_severity_number(event.severity);
        record.set_body(AnyValue::from(event.body));
        record.add_attribute(agent_names::TRACER_NAME, event.tracer);
        for (key, value) in event.attributes {
            record.add_attribute(key, value);
        }
        if let Some(id) = event.cgroup_id {
            record.add_attribute(net_names::CGROUP_ID, id as i64);
            if let Some(found) = self.cgroups.resolve(id) {
                record.add_attribute(net_names::CGROUP_PATH, found.cgroup_path.clone());
                let container = &found.container;
                let optional = [
                    (
                        container_names::CONTAINER_ID,
                        container.container_id.clone(),
                    ),
                    (
                        container_names::CONTAINER_RUNTIME_NAME,
                        container.runtime.map(String::from),
                    ),
                    (container_names::K8S_POD_UID, container.pod_uid.clone()),
                    (
                        container_names::K8S_POD_QOS,
                        container.qos.map(String::from),
                    ),
                ];
                for (key, value) in optional {
                    if let Some(value) = value {
                        record.add_attribute(key, value);
                    }
                }
            }
        }
        self.logger.emit(record);
    }
}

/// Which host and agent produced the data.
pub fn resource(config: &Config, kernel_release: &str) -> Resource {
    let host_id = host_id();
    let mut attributes = vec![
        KeyValue::new(res::SERVICE_NAME, "huatuo-otel"),
        KeyValue::new(res::SERVICE_VERSION, env!("CARGO_PKG_VERSION")),
        KeyValue::new(res::HOST_NAME, host_name()),
        KeyValue::new(res::HOST_ARCH, host_arch()),
        KeyValue::new(res::OS_TYPE, "linux"),
        KeyValue::new(res::OS_VERSION, kernel_release.to_string()),
    ];
    if let Some(id) = host_id {
        attributes.push(KeyValue::new(res::HOST_ID, id.clone()));
        attributes.push(KeyValue::new(res::SERVICE_INSTANCE_ID, id));
    }
    if !config.agent.region.is_empty() {
        attributes.push(KeyValue::new(
            res::HUATUO_REGION,
            config.agent.region.clone(),
        ));
    }
    for (key, value) in &config.agent.resource_attributes {
        attributes.push(KeyValue::new(key.clone(), value.clone()));
    }
    // Bypass the SDK's environment detectors: the agent's resource is described by its own
    // config, and OTEL_RESOURCE_ATTRIBUTES from a container image must not rename the host.
    Resource::builder_empty()
        .with_attributes(attributes)
        .build()
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

fn host_id() -> Option<String> {
    [
        "/etc/machine-id",
        "/var/lib/dbus/machine-id",
        "/sys/class/dmi/id/product_uuid",
    ]
    .iter()
    .filter_map(|p| std::fs::read_to_string(p).ok())
    .map(|s| s.trim().to_string())
    .find(|s| !s.is_empty())
}

/// The OTel `host.arch` value for the architecture this binary was built for.
fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "x86",
        "powerpc64" => "ppc64",
        "s390x" => "s390x",
        other => other,
    }
}

/// Sets up the agent's own logging: stderr always; the OTel pipeline too when
/// `agent.self_telemetry` is set. The SDK's own internal logs never go back into the pipeline,
/// which would loop.
pub fn init_logging(config: &Config, providers: Option<&Providers>) -> anyhow::Result<()> {
    use opentelemetry::trace::TracerProvider;
    use tracing_subscriber::prelude::*;
    use tracing_subscriber::EnvFilter;

    let level = || {
        EnvFilter::try_new(&config.agent.log_level).map_err(|e| {
            anyhow::anyhow!(
                "invalid configuration: agent.log_level {:?}: {e}",
                config.agent.log_level
            )
        })
    };
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(level()?);
    let registry = tracing_subscriber::registry().with(stderr);
    match providers.filter(|_| config.agent.self_telemetry) {
        Some(p) => {
            use tracing_subscriber::filter::{filter_fn, FilterExt};
            const EXPORT_PATH: [&str; 5] = ["opentelemetry", "tonic", "h2", "hyper", "reqwest"];
            let not_export_path =
                || filter_fn(|meta| !EXPORT_PATH.iter().any(|t| meta.target().starts_with(t)));
            let logs =
                opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge::new(&p.logs)
                    .with_filter(level()?.and(not_export_path()));
            let spans = tracing_opentelemetry::layer()
                .with_tracer(p.traces.tracer(SCOPE))
                .with_filter(level()?.and(not_export_path()));
            registry.with(logs).with(spans).try_init()?;
        }
        None => registry.try_init()?,
    }
    Ok(())
}
