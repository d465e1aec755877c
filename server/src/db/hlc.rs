//! The server's hybrid-logical-clock stamps, in the contract's wire format
//! `WALL-COUNTER-NODE`: wall clock in ms since the Unix epoch as 15 zero-padded digits, a
//! logical counter as 5 zero-padded digits, then the node (`server` for the server).
//! Lexical order of two stamps is their clock order.
//!
//! This is the one place the server formats a stamp; when sync-core exports its `Hlc`
//! type, swap the body of [`format_hlc`] for it.

/// The node name in stamps the server makes itself (demo seed, conflict resolutions).
pub const SERVER_NODE: &str = "server";

/// Format a stamp: `format_hlc(1795249800123, 0, "server")` →
/// `"001795249800123-00000-server"`.
pub fn format_hlc(wall_ms: i64, counter: u32, node: &str) -> String {
    format!("{:015}-{:05}-{}", wall_ms.max(0), counter, node)
}

/// A server stamp for `wall_ms` with counter 0.
pub fn server_stamp(wall_ms: i64) -> String {
    format_hlc(wall_ms, 0, SERVER_NODE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_the_contract() {
        assert_eq!(
            format_hlc(1_795_249_800_123, 0, "server"),
            "001795249800123-00000-server"
        );
        assert_eq!(format_hlc(5, 42, "dev"), "000000000000005-00042-dev");
        assert!(server_stamp(999) < server_stamp(1000));
    }
}
