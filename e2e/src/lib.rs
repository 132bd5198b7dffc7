//! Test support for the real parts `e2e/env up` starts.
