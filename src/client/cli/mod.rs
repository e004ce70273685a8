//! The `smartmeter` command-line tool (feature `cli`).
