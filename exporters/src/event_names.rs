//! Keeps the event-name contract at the pipeline's entry: an EventName is a registered, static
//! name. Log bridges name records after their source location (`event src/x.rs:42`), which is a
//! dynamic value; such records are renamed to the agent-log event.

use huatuo_semconv::{agent::AGENT_LOG, is_registered, Kind};
use opentelemetry::logs::LogRecord;
use opentelemetry::InstrumentationScope;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::{LogProcessor, SdkLogRecord};

#[derive(Debug)]
pub struct EventNameGuard;

impl LogProcessor for EventNameGuard {
    fn emit(&self, record: &mut SdkLogRecord, _scope: &InstrumentationScope) {
        if let Some(name) = record.event_name() {
            if !is_registered(name, Kind::Event) {
                record.set_event_name(AGENT_LOG);
            }
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: std::time::Duration) -> OTelSdkResult {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::logs::{Logger, LoggerProvider};
    use opentelemetry_sdk::logs::{InMemoryLogExporter, SdkLoggerProvider, SimpleLogProcessor};

    #[test]
    fn unregistered_names_become_the_agent_log_event() {
        let exporter = InMemoryLogExporter::default();
        let provider = SdkLoggerProvider::builder()
            .with_log_processor(EventNameGuard)
            .with_log_processor(SimpleLogProcessor::new(exporter.clone()))
            .build();
        let logger = provider.logger("test");
        for name in ["event receiver/src/agent.rs:42", "huatuo.skb.drop"] {
            let mut record = logger.create_log_record();
            record.set_event_name(name);
            logger.emit(record);
        }
        let names: Vec<_> = exporter
            .get_emitted_logs()
            .unwrap()
            .iter()
            .map(|l| l.record.event_name().unwrap())
            .collect();
        assert_eq!(names, ["huatuo.agent.log", "huatuo.skb.drop"]);
    }
}
