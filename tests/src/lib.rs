//! End-to-end tests of the whole system live here (filled in by the end-to-end issue).
