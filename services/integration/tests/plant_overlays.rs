//! Every plant's `tracery.toml` in `k8s/` is a configuration the suite accepts: it loads,
//! and its connectors build. CI also renders the overlays and validates the manifests.

use std::path::{Path, PathBuf};

use tracery_runtime::config::{Config, ServeArgs};

fn plant_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            plant_files(&path, found);
        } else if path.file_name().is_some_and(|name| name == "tracery.toml") {
            found.push(path);
        }
    }
}

#[test]
fn every_plant_configuration_loads_and_builds_its_connectors() {
    let k8s = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../k8s");
    let mut files = Vec::new();
    plant_files(&k8s, &mut files);
    assert!(
        files.len() >= 3,
        "the base and at least two plants: {files:?}"
    );
    for file in files {
        let args = ServeArgs {
            config: Some(file.clone()),
            ..ServeArgs::default()
        };
        let config =
            Config::load(&args).unwrap_or_else(|err| panic!("{}: {err:?}", file.display()));
        tracery_integration::connector_config::connectors(&config.connectors)
            .unwrap_or_else(|err| panic!("{}: {err}", file.display()));
    }
}
