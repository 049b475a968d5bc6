//! Generates the tonic/prost code from `tracery/v1/*.proto` with protox, so no system
//! `protoc` is needed, and writes the file descriptor set used by gRPC reflection.

use std::{env, error::Error, fs, path::PathBuf};

use prost::Message;

const PROTO_FILES: [&str; 6] = [
    "tracery/v1/common.proto",
    "tracery/v1/identity.proto",
    "tracery/v1/capture.proto",
    "tracery/v1/genealogy.proto",
    "tracery/v1/integration.proto",
    "tracery/v1/alerts.proto",
];

fn main() -> Result<(), Box<dyn Error>> {
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let descriptors = protox::compile(PROTO_FILES, ["."])?;
    fs::write(
        out_dir.join("tracery_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .codec_path("crate::codec::StrictCodec")
        .compile_fds(descriptors)?;
    for file in PROTO_FILES {
        println!("cargo:rerun-if-changed={file}");
    }
    Ok(())
}
