//! Power-quality measurements of IEC 61000-4-30 Ed.3 (PROTOCOL §11), computed by the core from the
//! same samples as the classic readings.
//!
//! | module | what |
//! |---|---|
//! | [`flicker`] | the IEC 61000-4-15 Ed.2 flickermeter: Pinst, Pst, Plt per phase |

pub mod flicker;
