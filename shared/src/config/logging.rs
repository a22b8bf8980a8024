//! Tracing for the binaries and the functions: JSON lines on Lambda, text on a terminal.

/// The JSON log lines of Lambda (and `auditrail serve` with JSON logs): one object per event,
/// its fields at the top level beside `timestamp`, `level` and `message` — what the template's
/// metric filters match.
pub fn json_log_layer<S, W>(writer: W) -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt::layer().json().flatten_event(true).with_target(false).with_writer(writer)
}

/// Tracing for binaries: JSON when `AWS_LAMBDA_LOG_FORMAT=JSON` (Lambda) or `json` is asked for,
/// level from `RUST_LOG` (`info`, `auditrail_shared=debug,warn`, …) or `AWS_LAMBDA_LOG_LEVEL`,
/// else `info`. `Targets` rather than `EnvFilter`: per-target levels are all this needs, and
/// `EnvFilter` links a regex engine into every function.
pub fn init_tracing(json: bool) {
    use tracing_subscriber::prelude::*;
    let filter = log_filter(std::env::var("RUST_LOG").ok(), std::env::var("AWS_LAMBDA_LOG_LEVEL").ok());
    let json = json || std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let registry = tracing_subscriber::registry().with(filter);
    let _ = if json {
        registry.with(json_log_layer(std::io::stdout)).try_init()
    } else {
        registry.with(tracing_subscriber::fmt::layer().with_target(false)).try_init()
    };
}

/// The log filter from `RUST_LOG`, else Lambda's `AWS_LAMBDA_LOG_LEVEL` (`INFO`, `DEBUG`, …), else
/// `info`; an unreadable value falls through to the next.
fn log_filter(rust_log: Option<String>, lambda_level: Option<String>) -> tracing_subscriber::filter::Targets {
    use tracing_subscriber::filter::LevelFilter;
    use tracing_subscriber::filter::Targets;
    // Each directive is a level or `target=level`; anything else (a bare word would be read as a
    // target, silently turning every other log off) makes the whole value unreadable.
    let parse = |s: &str| {
        let s = s.trim().to_lowercase();
        let level = |l: &str| l.parse::<LevelFilter>().is_ok();
        let sane = !s.is_empty()
            && s.split(',').all(|d| match d.split_once('=') {
                Some((target, l)) => !target.trim().is_empty() && level(l.trim()),
                None => level(d.trim()),
            });
        if sane { s.parse::<Targets>().ok() } else { None }
    };
    rust_log
        .as_deref()
        .and_then(parse)
        .or_else(|| lambda_level.as_deref().and_then(parse))
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO))
}

#[cfg(test)]
mod tests {
    #[test]
    fn log_filter_reads_rust_log_then_lambdas_level_then_info() {
        use tracing::Level;
        let f = |r: Option<&str>, l: Option<&str>| super::log_filter(r.map(Into::into), l.map(Into::into));
        let debug_here = f(Some("auditrail_shared=debug,warn"), None);
        assert!(debug_here.would_enable("auditrail_shared::export", &Level::DEBUG));
        assert!(!debug_here.would_enable("aws_smithy_runtime", &Level::INFO));
        assert!(debug_here.would_enable("aws_smithy_runtime", &Level::WARN));
        let lambda = f(None, Some("DEBUG"));
        assert!(lambda.would_enable("anything", &Level::DEBUG));
        let fallback = f(Some(""), Some("not a level"));
        assert!(fallback.would_enable("anything", &Level::INFO));
        assert!(!fallback.would_enable("anything", &Level::DEBUG));
    }
}
