//! Resource attributes: which host and agent produced the data.

names! {
    /// Logical name of the service: always `huatuo-otel`.
    ResourceAttribute SERVICE_NAME = "service.name", "string";
    /// Agent version.
    ResourceAttribute SERVICE_VERSION = "service.version", "string";
    /// Unique agent instance (the host id), so Prometheus `instance` labels stay per host.
    ResourceAttribute SERVICE_INSTANCE_ID = "service.instance.id", "string";
    /// Host name as the kernel reports it.
    ResourceAttribute HOST_NAME = "host.name", "string";
    /// `/etc/machine-id` (or the DMI product UUID).
    ResourceAttribute HOST_ID = "host.id", "string";
    /// CPU architecture, OTel values (`amd64`, `arm64`, ...).
    ResourceAttribute HOST_ARCH = "host.arch", "string";
    /// Always `linux`.
    ResourceAttribute OS_TYPE = "os.type", "string";
    /// Kernel release (`uname -r`).
    ResourceAttribute OS_VERSION = "os.version", "string";
    /// User-defined region from `agent.region`.
    ResourceAttribute HUATUO_REGION = "huatuo.region", "string";
}
