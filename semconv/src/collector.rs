//! Metric collectors' own health: how long a collection takes, what it yields, how often it fails.

names! {
    /// Collector name as in the configuration (`[collectors.NAME]`): `cpu`, `vmstat`, `netdev`, ...
    Attribute COLLECTOR_NAME = "huatuo.collector.name", "string";
    /// Wall time of the collector's last collection cycle (reading and parsing its sources).
    Metric COLLECTOR_DURATION = "huatuo.collector.duration", "gauge s";
    /// Data points the collector's last successful cycle produced (0 after a failed one): its share of the series the agent exports.
    Metric COLLECTOR_POINTS = "huatuo.collector.points", "gauge {point}";
    /// Failed collection cycles (source unreadable or malformed); the collector is restarted after `collectors.restart_backoff_secs`.
    Metric COLLECTOR_ERRORS = "huatuo.collector.errors", "counter {error}";
}
