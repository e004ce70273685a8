//! Stateless wire formats of the SmartMeter protocol: no state, no time, no I/O.
//!
//! Every parser here takes untrusted bytes and answers with a typed value or a typed error; none of
//! them panics or allocates without bound.

/// Declares a module's error enum with the three rejections every JSON object of the protocol shares
/// (not one object; a key missing; a key unreadable), written once so the texts stay identical
/// across replies, PQ objects and MQTT payloads, followed by the module's own variants. The
/// `@from_pq` arm adds the conversion from [`pq::PqError`].
macro_rules! object_error {
    ($(#[$meta:meta])* pub enum $name:ident { $($own:tt)* }) => {
        $(#[$meta])*
        pub enum $name {
            /// Not one JSON object of the expected shape.
            #[error("Invalid JSON: expected one JSON object")]
            Json,
            /// A key the object needs is absent (or `null`).
            #[error("Missing {field}")]
            Missing {
                /// The wire key.
                field: &'static str,
            },
            /// A key has the wrong type or an unreadable value.
            #[error("Invalid {field}: {reason}")]
            Invalid {
                /// The wire key.
                field: &'static str,
                /// What was expected.
                reason: &'static str,
            },
            $($own)*
        }
    };
    // `From<PqError>`: a PQ object read inside a reply or an MQTT payload keeps its rejection.
    (@from_pq $name:ident) => {
        impl From<crate::wire::pq::PqError> for $name {
            fn from(e: crate::wire::pq::PqError) -> $name {
                match e {
                    crate::wire::pq::PqError::Json => $name::Json,
                    crate::wire::pq::PqError::Missing { field } => $name::Missing { field },
                    crate::wire::pq::PqError::Invalid { field, reason } => {
                        $name::Invalid { field, reason }
                    }
                }
            }
        }
    };
}

pub mod command;
pub mod discovery;
pub mod frame;
pub mod log;
pub mod mqtt;
pub mod pq;
pub mod reply;
