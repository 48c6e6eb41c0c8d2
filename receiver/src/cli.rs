//! The command line: `run`, `probe`, `config default`, `config check`.

use clap::{Args, Parser, Subcommand};
use huatuo_config::{CommandLine, Config};
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit code for invalid configuration or command line: nothing was started.
pub const EXIT_CONFIG: u8 = 2;
/// Exit code for a failure to start or run the agent.
pub const EXIT_RUNTIME: u8 = 1;

#[derive(Parser)]
#[command(
    name = "huatuo-otel",
    version,
    about = "Kernel observability agent: eBPF tracers exported as OpenTelemetry logs, spans and metrics",
    long_about = "Kernel observability agent: eBPF tracers (packet drops, ...) exported as \
OpenTelemetry logs, spans and metrics, over OTLP or to local OTLP-JSON files.\n\n\
Configuration precedence: built-in defaults < --config FILE < HUATUO_* environment \
(HUATUO_EXPORTERS__FILE__DIRECTORY=/tmp/out) < flags. Print every key with \
`huatuo-otel config default`."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the agent until SIGINT or SIGTERM.
    Run(ConfigArgs),
    /// Show which tracers can run on this host, and why not, without starting anything.
    Probe(ConfigArgs),
    /// Configuration helpers.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the complete, commented default configuration (it loads unchanged).
    Default,
    /// Load and validate the configuration, then print the effective values as TOML.
    Check(Box<ConfigArgs>),
}

#[derive(Args, Clone, Default)]
pub struct ConfigArgs {
    /// TOML configuration file.
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory of the local OTLP-JSON files (sets exporters.file.directory).
    #[arg(long, value_name = "DIR")]
    pub file_dir: Option<PathBuf>,
    /// Send to an OTLP collector at this URL (sets exporters.otlp.endpoint and enables it).
    #[arg(long, value_name = "URL")]
    pub otlp_endpoint: Option<String>,
    /// OTLP protocol: grpc or http/protobuf (sets exporters.otlp.protocol).
    #[arg(long, value_name = "PROTOCOL")]
    pub otlp_protocol: Option<String>,
    /// Region resource attribute (sets agent.region).
    #[arg(long)]
    pub region: Option<String>,
    /// Filter for the agent's own logs, e.g. debug (sets agent.log_level).
    #[arg(long, value_name = "FILTER")]
    pub log_level: Option<String>,
    /// Disable a tracer (repeatable; sets tracers.NAME.enabled = false).
    #[arg(long = "disable-tracer", value_name = "NAME")]
    pub disable_tracers: Vec<String>,
    /// Disable a metric collector (repeatable; sets collectors.NAME.enabled = false).
    #[arg(long = "disable-collector", value_name = "NAME")]
    pub disable_collectors: Vec<String>,
    /// Where procfs is mounted, e.g. /host/proc or a fixture tree (sets agent.procfs_prefix).
    #[arg(long, value_name = "DIR")]
    pub procfs_prefix: Option<PathBuf>,
    /// Where sysfs is mounted (sets agent.sysfs_prefix).
    #[arg(long, value_name = "DIR")]
    pub sysfs_prefix: Option<PathBuf>,
}

impl ConfigArgs {
    /// The flags the user set, as the highest-precedence configuration layer.
    fn overrides(&self) -> CommandLine {
        let mut flags = CommandLine::default();
        if let Some(dir) = &self.file_dir {
            flags.set("--file-dir", "exporters.file.directory", path_value(dir));
        }
        if let Some(endpoint) = &self.otlp_endpoint {
            flags.set(
                "--otlp-endpoint",
                "exporters.otlp.endpoint",
                endpoint.clone().into(),
            );
            flags.set("--otlp-endpoint", "exporters.otlp.enabled", true.into());
        }
        if let Some(protocol) = &self.otlp_protocol {
            flags.set(
                "--otlp-protocol",
                "exporters.otlp.protocol",
                protocol.clone().into(),
            );
        }
        if let Some(region) = &self.region {
            flags.set("--region", "agent.region", region.clone().into());
        }
        if let Some(level) = &self.log_level {
            flags.set("--log-level", "agent.log_level", level.clone().into());
        }
        for tracer in &self.disable_tracers {
            let key = format!("tracers.{tracer}.enabled");
            flags.set("--disable-tracer", &key, false.into());
        }
        for collector in &self.disable_collectors {
            let key = format!("collectors.{collector}.enabled");
            flags.set("--disable-collector", &key, false.into());
        }
        // Relative to the working directory on the command line, as users expect of a path.
        for (flag, key, dir) in [
            (
                "--procfs-prefix",
                "agent.procfs_prefix",
                &self.procfs_prefix,
            ),
            ("--sysfs-prefix", "agent.sysfs_prefix", &self.sysfs_prefix),
        ] {
            if let Some(dir) = dir {
                let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.clone());
                flags.set(flag, key, path_value(&dir));
            }
        }
        flags
    }

    /// Loads the configuration, or prints why not.
    pub fn load(&self) -> Result<Config, ExitCode> {
        huatuo_config::load(self.config.as_deref(), self.overrides()).map_err(|e| {
            eprintln!("huatuo-otel: {e}");
            ExitCode::from(EXIT_CONFIG)
        })
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => match args.load() {
            Ok(config) => crate::agent::run(config),
            Err(code) => code,
        },
        Command::Probe(args) => match args.load() {
            Ok(config) => crate::probe::print(&config),
            Err(code) => code,
        },
        Command::Config(ConfigCommand::Default) => {
            print!("{}", huatuo_config::DEFAULT_TOML);
            ExitCode::SUCCESS
        }
        Command::Config(ConfigCommand::Check(args)) => match args.load() {
            Ok(config) => match toml::to_string(&config) {
                Ok(text) => {
                    print!("{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("huatuo-otel: cannot print the configuration: {e}");
                    ExitCode::from(EXIT_RUNTIME)
                }
            },
            Err(code) => code,
        },
    }
}

fn path_value(path: &std::path::Path) -> figment::value::Value {
    path.display().to_string().into()
}
