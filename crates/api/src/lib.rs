//! # otastream-api: the HTTP control plane
//!
//! One axum server answers every AWS service the OTA workflow uses, told apart by the service in
//! the SigV4 credential scope (paths collide between services, AWS-API.md §3).
//!
//! ## Layout
//! - [`sigv4`]: SigV4 verification for the rest-json services (sans-IO: head + body + `now`).
//! - [`error`]: [`error::ApiError`], the one place where failures become rest-json wire errors.

pub mod error;
pub mod sigv4;
