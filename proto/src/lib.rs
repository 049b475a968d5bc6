//! Tracery's gRPC contract: the `tracery.v1` protobuf package, generated at build time.
//!
//! Every service crate and client depends on this crate; nothing else defines wire types.

/// Generated code, as produced by `tonic-prost-build`.
pub mod tracery {
    /// Version 1 of the API.
    pub mod v1 {
        #![allow(missing_docs, clippy::all, clippy::pedantic)]
        tonic::include_proto!("tracery.v1");
    }
}

pub use tracery::v1;

pub mod codec;

/// Encoded `FileDescriptorSet` of every tracery proto and its imports, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/tracery_descriptor.bin"));

/// The fully qualified gRPC service names, as registered with health and reflection.
pub mod service_names {
    /// `tracery.v1.IdentityService`.
    pub const IDENTITY: &str = "tracery.v1.IdentityService";
    /// `tracery.v1.CaptureService`.
    pub const CAPTURE: &str = "tracery.v1.CaptureService";
    /// `tracery.v1.GenealogyService`.
    pub const GENEALOGY: &str = "tracery.v1.GenealogyService";
    /// `tracery.v1.IntegrationService`.
    pub const INTEGRATION: &str = "tracery.v1.IntegrationService";
}
