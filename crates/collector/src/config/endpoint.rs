//! Listening endpoints as the Go collector reads them: `host:port`, where an empty host
//! (`:4317`) means every interface.

/// The address to bind for `endpoint`: `:4317` becomes `0.0.0.0:4317`, anything else is
/// used as written.
pub fn listen_address(endpoint: &str) -> String {
    if endpoint.starts_with(':') {
        format!("0.0.0.0{endpoint}")
    } else {
        endpoint.to_string()
    }
}

/// Checks that `endpoint` is `host:port` or `:port` with a valid port.
pub fn check_endpoint(endpoint: &str) -> Result<(), String> {
    let Some((_, port)) = endpoint.rsplit_once(':') else {
        return Err(format!(
            "\"{endpoint}\" is not host:port (for example 127.0.0.1:4317, or :4317 for every interface)"
        ));
    };
    port.parse::<u16>()
        .map(|_| ())
        .map_err(|_| format!("\"{endpoint}\" has an invalid port \"{port}\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_host_means_every_interface_as_in_go() {
        assert_eq!(listen_address(":4317"), "0.0.0.0:4317");
        assert_eq!(listen_address("127.0.0.1:4317"), "127.0.0.1:4317");
        assert_eq!(listen_address("[::1]:4317"), "[::1]:4317");
        assert!(check_endpoint(":4317").is_ok());
        assert!(check_endpoint("[::1]:4317").is_ok());
        assert!(check_endpoint("localhost").is_err());
        assert!(check_endpoint("localhost:http").is_err());
    }
}
