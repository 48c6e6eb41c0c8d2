#![allow(clippy::result_large_err)] // figment::Jail closures must return figment::Error
use super::*;
use figment::Jail;
use std::io::Write;

fn write_config(text: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    file
}

fn no_env() -> Env {
    Env::prefixed("HUATUO_TEST_NEVER_SET_")
}

#[test]
fn default_toml_loads_into_the_defaults() {
    let file = write_config(DEFAULT_TOML);
    let loaded = load_with_env(Some(file.path()), CommandLine::default(), no_env()).unwrap();
    assert_eq!(loaded, Config::default());
}

/// Dotted paths of every key in `value`, tables descended into (arrays and their tables are
/// leaves: the file documents a list by one example value).
fn key_paths(prefix: &str, value: &toml::Value, out: &mut Vec<String>) {
    if let toml::Value::Table(table) = value {
        for (key, value) in table {
            let path = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            key_paths(&path, value, out);
            out.push(path);
        }
    }
}

#[test]
fn default_toml_documents_every_key() {
    // Loading the file to the defaults says nothing about keys it leaves out; the file is the
    // documentation of the settings, so every key the defaults have must be in it.
    let mut defaults = Vec::new();
    key_paths(
        "",
        &toml::Value::try_from(Config::default()).unwrap(),
        &mut defaults,
    );
    let mut documented = Vec::new();
    key_paths(
        "",
        &DEFAULT_TOML.parse::<toml::Value>().unwrap(),
        &mut documented,
    );
    let missing: Vec<_> = defaults
        .iter()
        .filter(|k| !documented.contains(k))
        .collect();
    assert!(
        missing.is_empty(),
        "missing from huatuo-otel.default.toml: {missing:?}"
    );
}

#[test]
fn layers_apply_in_order_file_env_cli() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "c.toml",
            "[agent]\nregion = \"from-file\"\nlog_level = \"debug\"\n[exporters.file]\ndirectory = \"/file\"\n",
        )?;
        jail.set_env("HUATUO_AGENT__REGION", "from-env");
        jail.set_env("HUATUO_EXPORTERS__FILE__DIRECTORY", "/env");
        let mut cli = CommandLine::default();
        cli.set("--file-dir", "exporters.file.directory", "/cli".into());
        let config = load(Some(std::path::Path::new("c.toml")), cli).unwrap();
        assert_eq!(config.agent.region, "from-env");
        assert_eq!(config.agent.log_level, "debug");
        assert_eq!(
            config.exporters.file.directory,
            std::path::PathBuf::from("/cli")
        );
        Ok(())
    });
}

#[test]
fn unknown_key_names_key_and_file() {
    let file = write_config("[tracers.dropwatch]\nenabled = true\nbogus_key = 3\n");
    let err = load_with_env(Some(file.path()), CommandLine::default(), no_env()).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("tracers.dropwatch.bogus_key"), "{text}");
    assert!(text.contains(&file.path().display().to_string()), "{text}");
}

#[test]
fn wrong_type_names_key_and_file() {
    let file = write_config("[exporters.otlp]\ntimeout_secs = \"ten\"\n");
    let err = load_with_env(Some(file.path()), CommandLine::default(), no_env()).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("exporters.otlp.timeout_secs"), "{text}");
    assert!(text.contains(&file.path().display().to_string()), "{text}");
}

#[test]
fn wrong_env_value_names_the_variable() {
    Jail::expect_with(|jail| {
        jail.set_env("HUATUO_TRACERS__DROPWATCH__PROTOCOL_FILTER", "icmp");
        let err = load(None, CommandLine::default()).unwrap_err().to_string();
        assert!(err.contains("tracers.dropwatch.protocol_filter"), "{err}");
        assert!(err.contains("HUATUO_"), "{err}");
        Ok(())
    });
}

#[test]
fn missing_file_is_an_error() {
    let err = load_with_env(
        Some(std::path::Path::new("/nonexistent/huatuo.toml")),
        CommandLine::default(),
        no_env(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("/nonexistent/huatuo.toml"));
}

#[test]
fn validation_names_the_key() {
    let file = write_config("[tracers.dropwatch]\nring_buffer_kib = 100\n");
    let err = load_with_env(Some(file.path()), CommandLine::default(), no_env()).unwrap_err();
    assert!(
        err.to_string()
            .contains("tracers.dropwatch.ring_buffer_kib"),
        "{err}"
    );

    let file = write_config("[tracers.tcp_retransmit]\nring_buffer_kib = 2\n");
    let err = load_with_env(Some(file.path()), CommandLine::default(), no_env()).unwrap_err();
    assert!(
        err.to_string()
            .contains("tracers.tcp_retransmit.ring_buffer_kib"),
        "{err}"
    );

    let file = write_config("[tracers.waitrate]\ninterval_secs = 0\n");
    let err = load_with_env(Some(file.path()), CommandLine::default(), no_env()).unwrap_err();
    assert!(
        err.to_string().contains("tracers.waitrate.interval_secs"),
        "{err}"
    );

    let file = write_config("[tracers.waitrate]\nthreshold = -1.0\n");
    let err = load_with_env(Some(file.path()), CommandLine::default(), no_env()).unwrap_err();
    assert!(
        err.to_string().contains("tracers.waitrate.threshold"),
        "{err}"
    );

    let file = write_config("[exporters.file]\nenabled = false\n");
    let err = load_with_env(Some(file.path()), CommandLine::default(), no_env()).unwrap_err();
    assert!(err.to_string().contains("no exporter is enabled"), "{err}");

    let file = write_config("[exporters.otlp]\nenabled = true\nendpoint = \"127.0.0.1:4317\"\n");
    let err = load_with_env(Some(file.path()), CommandLine::default(), no_env()).unwrap_err();
    assert!(err.to_string().contains("exporters.otlp.endpoint"), "{err}");

    let file =
        write_config("[exporters.otlp]\nenabled = true\n[exporters.otlp.spool]\nmax_bytes = 0\n");
    let err = load_with_env(Some(file.path()), CommandLine::default(), no_env()).unwrap_err();
    assert!(err.to_string().contains("exporters.otlp.spool"), "{err}");

    let file = write_config("[exporters.otlp.tls]\ncert_file = \"/c.pem\"\n");
    let err = load_with_env(Some(file.path()), CommandLine::default(), no_env()).unwrap_err();
    assert!(
        err.to_string().contains("exporters.otlp.tls.cert_file"),
        "{err}"
    );
}

#[test]
fn protocol_names_match_the_contract() {
    let file = write_config("[exporters.otlp]\nprotocol = \"http/protobuf\"\n");
    let config = load_with_env(Some(file.path()), CommandLine::default(), no_env()).unwrap();
    assert_eq!(config.exporters.otlp.protocol, OtlpProtocol::HttpProtobuf);
}

#[test]
fn shipped_example_loads() {
    let path = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/example.toml"));
    let config = load_with_env(Some(path), CommandLine::default(), no_env()).unwrap();
    assert!(config.exporters.otlp.enabled);
    assert_eq!(
        config.tracers.dropwatch.protocol_filter,
        ProtocolFilter::Tcp
    );
}

#[test]
fn a_bad_interface_pattern_names_its_key() {
    let file = write_config("[tracers.netdev_events]\nexclude = [\"lo\", \"eth(\"]\n");
    let error = load_with_env(Some(file.path()), CommandLine::default(), no_env())
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("tracers.netdev_events.exclude") && error.contains("\"eth(\""),
        "{error}"
    );
}

#[test]
fn unknown_softirq_vector_names_key_and_value() {
    let file = write_config("[tracers.softirq]\nvectors = [\"NET_RX\", \"NETRX\"]\n");
    let err = load_with_env(Some(file.path()), CommandLine::default(), no_env()).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("tracers.softirq.vectors"), "{text}");
    assert!(text.contains("NETRX"), "{text}");
}

#[test]
fn prometheus_listen_address_errors_name_the_key() {
    let file = write_config("[exporters.prometheus]\nenabled = true\nlisten = \"localhost\"\n");
    let err = load_with_env(Some(file.path()), CommandLine::default(), no_env()).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("exporters.prometheus.listen"), "{text}");
}

#[test]
fn bad_collector_pattern_names_key_and_file() {
    let file = write_config("[collectors.vmstat]\ninclude = [\"^pg(\"]\n");
    let err = load_with_env(Some(file.path()), CommandLine::default(), no_env()).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("collectors.vmstat.include"), "{text}");
    assert!(text.contains("invalid regular expression"), "{text}");
    assert!(text.contains(&file.path().display().to_string()), "{text}");
}

#[test]
fn collector_section_keeps_its_defaults_for_keys_not_set() {
    let file = write_config("[collectors.netdev]\ninclude = [\"^eth\"]\n");
    let config = load_with_env(Some(file.path()), CommandLine::default(), no_env()).unwrap();
    assert!(config.collectors.netdev.allows("eth0"));
    assert!(!config.collectors.netdev.allows("lo"));
    assert_eq!(
        config.collectors.netdev.exclude,
        NetdevCollectorConfig::default().exclude
    );
}
