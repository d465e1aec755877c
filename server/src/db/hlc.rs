//! The server's hybrid-logical-clock stamps, in the contract's wire format
//! `WALL-COUNTER-NODE`: wall clock in ms since the Unix epoch as 15 zero-padded digits, a
//! logical counter as 5 zero-padded digits, then the node (`server` for the server).
//! Lexical order of two stamps is their clock order.
//!
//! The one place the server formats a stamp; the format itself is sync-core's `Hlc`, so
//! server and phones can never disagree on it.

use sync_core::Hlc;

/// The node name in stamps the server makes itself (demo seed, conflict resolutions).
pub const SERVER_NODE: &str = sync_core::hlc::SERVER_NODE;

/// Format a stamp: `format_hlc(1795249800123, 0, "server")` →
/// `"001795249800123-00000-server"`. Negative walls format as 0.
pub fn format_hlc(wall_ms: i64, counter: u32, node: &str) -> String {
    Hlc::new(u64::try_from(wall_ms).unwrap_or(0), counter, node).to_string()
}

/// A server stamp for `wall_ms` with counter 0.
pub fn server_stamp(wall_ms: i64) -> String {
    format_hlc(wall_ms, 0, SERVER_NODE)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn formats_like_the_contract() {
        assert_eq!(
            format_hlc(1_795_249_800_123, 0, "server"),
            "001795249800123-00000-server"
        );
        assert_eq!(format_hlc(5, 42, "dev"), "000000000000005-00042-dev");
        assert_eq!(format_hlc(-1, 0, "server"), "000000000000000-00000-server");
        assert!(server_stamp(999) < server_stamp(1000));
        let parsed: Hlc = server_stamp(1_795_249_800_123).parse().unwrap();
        assert_eq!(
            (parsed.wall, parsed.counter, parsed.node.as_str()),
            (1_795_249_800_123, 0, "server")
        );
    }
}
