//! The Lambda environment seen as OpenTelemetry resource attributes.

/// Completes `OTEL_RESOURCE_ATTRIBUTES` with what Lambda's environment says about this
/// execution environment (cloud.*, faas.*), keeping any value already given, and makes
/// OTLP http/protobuf the default protocol: inside Lambda a flush must finish on a frozen-
/// between-invocations sandbox with few threads, where gRPC flushes can deadlock.
///
/// Call it before any thread is started: it changes the process environment.
pub fn prepare_telemetry_env() {
    let existing = std::env::var("OTEL_RESOURCE_ATTRIBUTES").unwrap_or_default();
    let additions = lambda_resource_attributes(&existing, |key| std::env::var(key).ok());
    if !additions.is_empty() {
        let merged = if existing.trim().is_empty() {
            additions
        } else {
            format!("{existing},{additions}")
        };
        // SAFETY: called from main before the runtime or any other thread exists, so
        // nothing can read the environment concurrently.
        unsafe { std::env::set_var("OTEL_RESOURCE_ATTRIBUTES", merged) };
    }
    if std::env::var_os("OTEL_EXPORTER_OTLP_PROTOCOL").is_none() {
        // SAFETY: as above.
        unsafe { std::env::set_var("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf") };
    }
}

/// The `key=value,...` resource attributes that Lambda's variables imply and `existing`
/// (an `OTEL_RESOURCE_ATTRIBUTES` value) lacks.
pub fn lambda_resource_attributes(existing: &str, env: impl Fn(&str) -> Option<String>) -> String {
    let present: Vec<&str> = existing
        .split(',')
        .filter_map(|pair| pair.split_once('=').map(|(k, _)| k.trim()))
        .collect();
    let memory_bytes = env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        .and_then(|mb| mb.parse::<u64>().ok())
        .map(|mb| (mb * 1024 * 1024).to_string());
    let candidates = [
        ("cloud.provider", Some("aws".to_owned())),
        ("cloud.platform", Some("aws_lambda".to_owned())),
        ("cloud.region", env("AWS_REGION")),
        ("faas.name", env("AWS_LAMBDA_FUNCTION_NAME")),
        ("faas.version", env("AWS_LAMBDA_FUNCTION_VERSION")),
        ("faas.instance", env("AWS_LAMBDA_LOG_STREAM_NAME")),
        ("faas.max_memory", memory_bytes),
    ];
    candidates
        .into_iter()
        .filter(|(key, _)| !present.contains(key))
        .filter_map(|(key, value)| {
            value
                .filter(|v| !v.is_empty())
                .map(|v| format!("{key}={}", escape_separators(&v)))
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Escapes the two characters that would split an `OTEL_RESOURCE_ATTRIBUTES` entry. Only
/// those: the Rust SDK does not percent-decode values, so `$LATEST` must stay as it is.
fn escape_separators(value: &str) -> String {
    value.replace(',', "%2C").replace('=', "%3D")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambda_variables_become_faas_and_cloud_attributes() {
        let env = |key: &str| match key {
            "AWS_LAMBDA_FUNCTION_NAME" => Some("fraud-check".to_owned()),
            "AWS_LAMBDA_FUNCTION_VERSION" => Some("$LATEST".to_owned()),
            "AWS_REGION" => Some("us-east-1".to_owned()),
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE" => Some("128".to_owned()),
            _ => None,
        };
        let attributes = lambda_resource_attributes("", env);
        assert_eq!(
            attributes,
            "cloud.provider=aws,cloud.platform=aws_lambda,cloud.region=us-east-1,\
             faas.name=fraud-check,faas.version=$LATEST,faas.max_memory=134217728"
        );
    }

    #[test]
    fn attributes_already_given_are_kept() {
        let env = |key: &str| (key == "AWS_LAMBDA_FUNCTION_NAME").then(|| "other".to_owned());
        let attributes =
            lambda_resource_attributes("faas.name=fraud-check,cloud.provider=aws", env);
        assert_eq!(attributes, "cloud.platform=aws_lambda");
    }
}
